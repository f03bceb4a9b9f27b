from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "exchange.licensing"
    label = "licensing"
    verbose_name = "Licensing"
