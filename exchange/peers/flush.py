"""The durable record: what changed in the live index, written to PostgreSQL in batches.

The index marks a peer in ``pmi:dirty`` when its endpoint or holdings change and in
``pmi:seen`` when it heartbeats; this flush reads the peer's state as Redis has it now
(so ten announces in a second are one write), rewrites the peer and its holdings in one
transaction, and only then drops the marks it read (a mark that changed meanwhile stays for
the next flush). With Redis's AOF the marks outlive a Redis restart, so the record catches
up afterwards; a flush that fails before its commit leaves them all in place.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from django.db import transaction

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import Work
from exchange.licensing.models import Device
from exchange.peers.live_index import client
from exchange.peers.models import Holding, Peer
from licensing.core.bitfield import bitfield_full
from peerindex import schema, store


def _when(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def peers_flush(*, batch: int = 2000) -> int:
    """Write up to ``batch`` changed peers; how many marks were taken."""
    conn = client()
    read = store.dirty_read(conn, count=batch, key=schema.DIRTY)
    if not read:
        return 0
    states = [s for s in store.peer_states(conn, list(read)) if s.live]
    devices = dict(Device.objects.filter(pk__in=[s.device for s in states])
                   .values_list("pk", "user_id"))
    # a credential names its user; a device that moved to no one else is the only match
    states = [s for s in states if devices.get(s.device) == s.user]
    work_ids = {w for s in states for w in s.holdings}
    pieces = {str(pk): count for pk, count in Work.objects.filter(pk__in=_uuids(work_ids))
              .values_list("pk", "package__piece_count") if count}
    with transaction.atomic():
        existing = set(Peer.objects.filter(pk__in=[s.device for s in states])
                       .values_list("pk", flat=True))
        Peer.objects.bulk_create(
            [Peer(device_id=s.device, user_id=s.user, host=s.host, port=s.port,
                  agent_version=s.version[:40], last_seen_at=_when(s.seen)) for s in states],
            update_conflicts=True, unique_fields=["device"],
            update_fields=["user", "host", "port", "agent_version", "last_seen_at"])
        Holding.objects.filter(peer_id__in=[s.device for s in states]).delete()
        Holding.objects.bulk_create(
            [Holding(peer_id=s.device, work_id=work, have_count=have,
                     bitfield=base64.b64decode(bits) if bits else bitfield_full(pieces[work]))
             for s in states for work, (have, bits) in s.holdings.items()
             if work in pieces and have])
        users = User.objects.in_bulk([s.user for s in states if s.device not in existing])
        for state in states:
            if state.device not in existing and state.user in users:
                peer = Peer(device_id=state.device, host=state.host, port=state.port)
                audit_record(actor=users[state.user], action="peer.register", target=peer,
                             data={"endpoint": peer.endpoint})
    store.dirty_done(conn, read, key=schema.DIRTY)
    return len(read)


def heartbeats_flush(*, batch: int = 5000) -> int:
    """Move heartbeats' times to the peers' rows (never backwards)."""
    conn = client()
    read = store.dirty_read(conn, count=batch, key=schema.SEEN)
    if not read:
        return 0
    times = {device: _when(int(stamp) / 1000) for device, stamp in read.items()}
    peers = list(Peer.objects.filter(pk__in=list(times)).only("pk", "last_seen_at"))
    changed = []
    for peer in peers:
        if peer.last_seen_at < times[peer.pk]:
            peer.last_seen_at = times[peer.pk]
            changed.append(peer)
    with transaction.atomic():
        Peer.objects.bulk_update(changed, ["last_seen_at"], batch_size=1000)
    store.dirty_done(conn, read, key=schema.SEEN)
    return len(read)


def index_flush(*, rounds: int = 10) -> int:
    """Drain both to-do lists, up to ``rounds`` batches each (the next run does the rest)."""
    total = 0
    for _ in range(rounds):
        written = peers_flush()
        total += written
        if not written:
            break
    for _ in range(rounds):
        moved = heartbeats_flush()
        total += moved
        if not moved:
            break
    return total


def _uuids(values: set[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return found
