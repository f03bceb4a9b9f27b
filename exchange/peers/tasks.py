"""Thin tasks over the live index: its durable record, and what it must know."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from redis import RedisError

from exchange.peers import live_index
from exchange.peers.flush import index_flush
from peerindex import store

log = logging.getLogger(__name__)
FLUSH_LOCK = "pmi:flush-lock"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@shared_task
def peer_index_flush_task() -> int:
    """Every 2 s: changed peers to PostgreSQL. One flusher at a time (two would rewrite
    one peer's holdings in two transactions at once); a Redis that is away is waited for
    by the next run, the marks staying where they are."""
    if not live_index.enabled():
        return 0
    conn = live_index.client()
    token = uuid.uuid4().hex
    try:
        if not conn.set(FLUSH_LOCK, token, nx=True, ex=120):
            return 0
        try:
            return index_flush()
        finally:  # only our own lock: one that expired may be another flusher's now
            conn.eval(_RELEASE, 1, FLUSH_LOCK, token)
    except RedisError as exc:
        log.warning("peer index flush: Redis unavailable (%s); the next run catches up", exc)
        return 0


@shared_task
def peer_index_drop_task(devices: list[str]) -> int:
    """Revoked devices out of every answer once more (``live_index.peers_drop``)."""
    if not live_index.enabled():
        return 0
    try:
        conn = live_index.client()
        for device in devices:
            store.peer_drop(conn, device)
    except RedisError as exc:
        log.warning("peer index drop: Redis unavailable (%s)", exc)
        return 0
    return len(devices)


@shared_task
def peer_index_sync_task() -> int:
    """Every minute: the works on sale and the revocations, whole (heals any change the
    index missed while Redis was away)."""
    if not live_index.enabled():
        return 0
    try:
        return live_index.works_sync() + live_index.revocations_sync()
    except RedisError as exc:
        log.warning("peer index sync: Redis unavailable (%s)", exc)
        return 0
