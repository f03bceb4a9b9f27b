"""Thin tasks over the live index: its durable record, and what it must know."""

from __future__ import annotations

import logging

from celery import shared_task
from redis import RedisError

from exchange.peers import live_index
from exchange.peers.flush import index_flush

log = logging.getLogger(__name__)
FLUSH_LOCK = "pmi:flush-lock"


@shared_task
def peer_index_flush_task() -> int:
    """Every 2 s: changed peers to PostgreSQL. One flusher at a time (two would rewrite
    one peer's holdings in two transactions at once); a Redis that is away is waited for
    by the next run, the marks staying where they are."""
    if not live_index.enabled():
        return 0
    conn = live_index.client()
    try:
        if not conn.set(FLUSH_LOCK, "1", nx=True, ex=120):
            return 0
        try:
            return index_flush()
        finally:
            conn.delete(FLUSH_LOCK)
    except RedisError as exc:
        log.warning("peer index flush: Redis unavailable (%s); the next run catches up", exc)
        return 0


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
