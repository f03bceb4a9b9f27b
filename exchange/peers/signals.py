"""Changes the live index must hear of at once: a work going on or off sale, a device
revoked, an account disabled (the minute's sync would heal a missed one, but a revoked
device should not serve for a minute more)."""

from __future__ import annotations

from typing import Any

from exchange.accounts.models import User
from exchange.audit.models import AuditEvent
from exchange.catalogue.models import Work
from exchange.licensing.models import Device
from exchange.peers import live_index


def on_work_saved(sender: type[Work], instance: Work, **_kwargs: Any) -> None:
    del sender  # only Work is connected
    live_index.work_publish(instance)


def on_device_saved(sender: type[Device], instance: Device, **_kwargs: Any) -> None:
    del sender
    if instance.revoked_at is not None:
        live_index.device_revoked(instance)


#: audit actions that put a work on sale or take it off (the catalogue changes status by
#: a queryset update, which sends no signal of its own)
WORK_ACTIONS = frozenset({"work.ready", "work.withdraw", "work.update", "work.failed"})


def on_audit_event(sender: type[AuditEvent], instance: AuditEvent, created: bool,
                   **_kwargs: Any) -> None:
    """Changes made by queryset updates (a device revoked, a work ready or withdrawn),
    known by their audit rows."""
    del sender
    if not created:
        return
    if instance.action == "device.revoke":
        device = Device.objects.filter(pk=instance.target_id).first()
        if device is not None:
            live_index.device_revoked(device)
    elif instance.action in WORK_ACTIONS:
        work = Work.objects.filter(pk=instance.target_id).first()
        if work is not None:
            live_index.work_publish(work)


def on_user_saved(sender: type[User], instance: User, created: bool, **_kwargs: Any) -> None:
    del sender
    if not created:
        live_index.user_blocked(instance, blocked=not instance.is_active)
