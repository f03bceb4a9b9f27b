from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "exchange.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        """A mistyped rate in the environment stops the start, not a member's send later."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from exchange.core.rate_limits import Rate

        for name in ("MESSAGING_SEND_RATE", "MESSAGING_REPORT_RATE", "MESSAGING_BLOCK_RATE"):
            try:
                Rate.parse(getattr(settings, name))
            except ValueError as error:
                raise ImproperlyConfigured(f"PEERMARK_{name}: {error}") from None
