from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "peers"
    label = "peers"
    verbose_name = "Peers"
