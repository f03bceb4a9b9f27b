from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "exchange.operations"
    label = "operations"
    verbose_name = "Operations"
