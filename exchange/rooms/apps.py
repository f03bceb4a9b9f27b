from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class RoomsConfig(AppConfig):
    name = "exchange.rooms"
    label = "rooms"
    verbose_name = "Rooms"

    def ready(self) -> None:
        """A rate the settings got wrong stops the start, not every socket later."""
        from exchange.core.rate_limits import Rate

        for name in ("ROOMS_SAY_RATE", "ROOMS_FRAME_RATE"):
            try:
                Rate.parse(getattr(settings, name))
            except ValueError as error:
                raise ImproperlyConfigured(f"PEERMARK_{name}: {error}") from error
