"""The platform's side of the live index in Redis (``peerindex``): the same state the
fast path serves, written and read by the platform's own endpoints, and kept told what is
on sale and who is revoked.

On only where ``PEER_INDEX`` is ``"redis"`` (the default with ``REDIS_URL``); the
embedded default keeps peers and holdings in the database alone (``services`` and
``selectors`` choose). PostgreSQL stays the durable record either way: ``flush.py``
writes what changed in Redis there in batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import redis
from django.conf import settings
from django.db import transaction

from exchange.accounts.models import User
from exchange.catalogue.models import Work, WorkStatus
from exchange.core.redis_clients import redis_client
from exchange.licensing.models import Device
from exchange.peers.models import RevokedIndexCredential
from peerindex import credentials, schema, store

log = logging.getLogger(__name__)

#: Redis is away (refused, timed out, loading after a restart): the platform's own peer
#: endpoints then fall back to the durable record in the database, as the embedded default
#: keeps it, so agents that fall back to the platform from the fast path keep working.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)


def unavailable(what: str, error: Exception) -> None:
    log.warning("live peer index unavailable (%s): %s from the database", error, what)


def enabled() -> bool:
    return settings.PEER_INDEX == "redis"


def client() -> redis.Redis:
    """Bounded waits: a stalled Redis makes the platform's endpoints fall back to the
    database, not hang."""
    return redis_client("the live peer index", timeout=5)


def offered() -> bool:
    """Whether agents are told to use the fast path."""
    return enabled() and bool(settings.INDEX_URL)


def signing_key() -> bytes:
    if settings.INDEX_SECRET:
        return credentials.parse_key(settings.INDEX_SECRET)
    return credentials.derive_key(settings.SECRET_KEY)


def verifying_keys() -> list[bytes]:
    """The signing key, and the one before it during a rotation (the index honours both)."""
    keys = [signing_key()]
    if settings.INDEX_PREVIOUS_SECRET:
        keys.append(credentials.parse_key(settings.INDEX_PREVIOUS_SECRET))
    return keys


def credential_mint(*, user: User, device: Device, now: int | None = None) -> tuple[str, int]:
    """A fresh index credential for one of ``user``'s devices, and when it expires."""
    issued = int(time.time()) if now is None else now
    ttl = settings.INDEX_CREDENTIAL_SECONDS
    token = credentials.mint(signing_key(), user=user.pk, device=device.device_id,
                             now=issued, ttl=ttl)
    return token, issued + ttl


# --- what the fast path must know: works on sale, revocations -----------------------------

def work_entry(work: Work) -> store.WorkEntry:
    seeds = tuple(work.web_seeds.order_by("created_at").values_list("url", flat=True))
    return store.WorkEntry(work.package.piece_count, seeds)


def work_publish(work: Work) -> None:
    """Tell the index whether ``work`` is on sale (after the transaction commits)."""
    if not enabled():
        return
    work_id = str(work.pk)

    def publish() -> None:
        # Only a real change is published: each one makes every index process forget the
        # works it remembers.
        conn = client()
        fresh = Work.objects.select_related("package").filter(pk=work_id).first()
        known = store.work_get(conn, work_id)
        if fresh is not None and fresh.status == WorkStatus.READY and hasattr(fresh, "package"):
            entry = work_entry(fresh)
            if entry != known:
                store.works_put(conn, {work_id: entry})
        elif known is not None:
            store.works_remove(conn, [work_id])

    transaction.on_commit(publish, robust=True)  # Redis away: the minute's sync heals it


def works_sync() -> int:
    """The whole catalogue at once: heals a change made without a signal (a queryset
    update) or lost while Redis was away."""
    ready = (Work.objects.filter(status=WorkStatus.READY, package__isnull=False)
             .select_related("package").prefetch_related("web_seeds"))
    entries = {str(w.pk): store.WorkEntry(
        w.package.piece_count,
        tuple(s.url for s in sorted(w.web_seeds.all(), key=lambda s: s.created_at)))
        for w in ready}
    store.works_replace(client(), entries)
    return len(entries)


def device_revoked(device: Device) -> None:
    """Refuse the device's credentials and take it out of every answer, on commit."""
    if not enabled():
        return
    device_id = device.device_id

    def publish() -> None:
        conn = client()
        store.revoke(conn, {f"d:{device_id}": store.FOREVER})
        peers_drop([device_id])

    transaction.on_commit(publish, robust=True)  # Redis away: the minute's sync heals it


def user_blocked(user: User, *, blocked: bool) -> None:
    if not enabled():
        return
    member = f"u:{user.pk}"

    devices = list(Device.objects.filter(user=user).values_list("pk", flat=True))

    def publish() -> None:
        conn = client()
        if blocked:
            store.revoke(conn, {member: store.FOREVER})
            peers_drop(devices)
        elif conn.zscore(schema.REVOKED, member) is not None:
            store.unrevoke(conn, [member])

    transaction.on_commit(publish, robust=True)  # Redis away: the minute's sync heals it


#: seconds after a revocation to take its peers out once more: an announce the index took
#: before it reloaded its revocations (it does every second) would have put one back
DROP_AGAIN_SECONDS = 3


def peers_drop(devices: list[str]) -> None:
    """Take ``devices`` out of every answer now, and again in a few seconds."""
    from exchange.peers.tasks import peer_index_drop_task

    conn = client()
    for device in devices:
        store.peer_drop(conn, device)
    if devices:
        peer_index_drop_task.apply_async((devices,), countdown=DROP_AGAIN_SECONDS)


def revocations_sync() -> int:
    """Every revoked device and inactive account, at once, and every credential revoked
    one by one that has not yet run out (from the database: a Redis restarted without its
    AOF has forgotten them)."""
    members = {f"d:{d}": store.FOREVER for d in
               Device.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)}
    members.update({f"u:{u}": store.FOREVER for u in
                    User.objects.filter(is_active=False).values_list("pk", flat=True)})
    now = dt.datetime.now(dt.UTC)
    RevokedIndexCredential.objects.filter(expires_at__lte=now).delete()
    members.update({f"c:{jti}": int(until.timestamp()) for jti, until in
                    RevokedIndexCredential.objects.values_list("jti", "expires_at")})
    conn = client()
    current = {m for m in store.revoked(conn, now=int(time.time()))
               if m.startswith(("d:", "u:"))}
    gone = current - set(members)
    # asked again: one revoked between the reads above must not be lifted
    gone -= {f"d:{d}" for d in Device.objects.filter(revoked_at__isnull=False)
             .filter(pk__in=[m[2:] for m in gone if m.startswith("d:")])
             .values_list("pk", flat=True)}
    gone -= {f"u:{u}" for u in User.objects.filter(is_active=False)
             .filter(pk__in=[int(m[2:]) for m in gone if m.startswith("u:")
                             and m[2:].isdigit()]).values_list("pk", flat=True)}
    store.unrevoke(conn, gone)
    store.revoke(conn, members)
    return len(members)


def credential_revoke(token: str, *, user: User) -> bool:
    """Refuse one credential of ``user``'s before it runs out (an agent logging out)."""
    try:
        claims = credentials.verify(verifying_keys(), token, now=int(time.time()))
    except credentials.CredentialError:
        return False
    if claims.user != user.pk:
        return False
    if enabled():  # (no live index, no credential it could take: nothing to keep)
        RevokedIndexCredential.objects.get_or_create(
            jti=claims.jti, defaults={"user": user, "expires_at": dt.datetime.fromtimestamp(
                claims.exp, tz=dt.UTC)})
        store.revoke(client(), {f"c:{claims.jti}": claims.exp})
    return True
