from django.apps import AppConfig


class PurchasesConfig(AppConfig):
    name = "exchange.purchases"
    label = "purchases"
    verbose_name = "Purchases"
