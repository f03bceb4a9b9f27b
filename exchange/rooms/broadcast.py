"""Telling a room's open sockets what changed, once the change has committed."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def send_now(group: str, event: dict[str, Any]) -> None:
    """Hand ``event`` to every socket in ``group``: once to each process with sockets in
    the room, which hands it to them (exchange/rooms/fanout.py; ``room`` names the group
    there). The change is already stored, so a channel layer outage loses only the live
    echo: readers find it in the history."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {**event, "room": group})
    except Exception:
        log.warning("room event %s to %s not delivered", event.get("type"), group, exc_info=True)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send after the surrounding transaction commits, so no socket ever sees a line or a
    sanction that was rolled back."""
    transaction.on_commit(lambda: send_now(group, event))
