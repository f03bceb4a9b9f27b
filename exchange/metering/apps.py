from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "exchange.metering"
    label = "metering"
    verbose_name = "Metering"
