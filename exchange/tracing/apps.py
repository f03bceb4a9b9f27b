from django.apps import AppConfig


class TracingConfig(AppConfig):
    name = "exchange.tracing"
    label = "tracing"
    verbose_name = "Leak tracing"
