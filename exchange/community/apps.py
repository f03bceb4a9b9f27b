from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "exchange.community"
    label = "community"
    verbose_name = "Community"
