from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "exchange.portal"
    label = "portal"
    verbose_name = "Portal"
