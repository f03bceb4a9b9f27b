from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class PeersConfig(AppConfig):
    name = "exchange.peers"
    label = "peers"
    verbose_name = "Peers"

    def ready(self) -> None:
        """Signals that keep the live index current; and a credential rate the settings
        got wrong stops the start, not every agent's credential later."""
        from django.db.models.signals import post_save

        from exchange.core.rate_limits import Rate

        try:
            Rate.parse(settings.INDEX_CREDENTIAL_RATE)
        except ValueError as error:
            raise ImproperlyConfigured(f"PEERMARK_INDEX_CREDENTIAL_RATE: {error}") from error

        from exchange.accounts.models import User
        from exchange.audit.models import AuditEvent
        from exchange.catalogue.models import Work
        from exchange.licensing.models import Device
        from exchange.peers import signals

        post_save.connect(signals.on_work_saved, sender=Work, dispatch_uid="peers.work")
        post_save.connect(signals.on_device_saved, sender=Device, dispatch_uid="peers.device")
        post_save.connect(signals.on_user_saved, sender=User, dispatch_uid="peers.user")
        post_save.connect(signals.on_audit_event, sender=AuditEvent, dispatch_uid="peers.audit")
