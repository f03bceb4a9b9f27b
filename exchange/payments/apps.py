from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "exchange.payments"
    label = "payments"
    verbose_name = "Payments"
