from django.apps import AppConfig


class ComputeMarketConfig(AppConfig):
    name = "exchange.compute_market"
    label = "compute_market"
    verbose_name = "Compute market"
