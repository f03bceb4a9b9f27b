from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "exchange.messaging"
    label = "messaging"
    verbose_name = "Messaging"
