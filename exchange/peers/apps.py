from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "exchange.peers"
    label = "peers"
    verbose_name = "Peers"
