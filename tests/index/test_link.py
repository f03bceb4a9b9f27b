"""The index's shared Redis connection (peerindex/link.py) against a real Redis: what
its stall check does when the process, not Redis, was the slow one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from peerindex.link import STALL_SECONDS, Link, RedisUnavailableError
from tests.conftest import index_redis_url


async def _held_up_process(url: str) -> Any:
    """A command goes out, then the whole process is held up past ``STALL_SECONDS``
    (time.sleep blocks the event loop as a descheduled process would): Redis's reply
    waits unread in the socket, and the watcher's check runs first when it wakes."""
    link = Link(url)
    try:
        assert await link.call("PING") == b"PONG"
        pending = asyncio.ensure_future(link.call("ECHO", "late"))
        for _ in range(3):  # the command queued and written
            await asyncio.sleep(0)
        time.sleep(STALL_SECONDS + 0.5)
        link.check_stall()
        return await asyncio.wait_for(pending, 5)
    finally:
        link.close()


def test_a_process_that_was_itself_held_up_keeps_its_connection(
        shared_redis: redis.Redis) -> None:
    assert asyncio.run(_held_up_process(index_redis_url())) == b"late"


async def _stuck_redis(url: str) -> tuple[bool, bool]:
    """A reply that never comes (BLPOP on an empty list stands for a stuck Redis): the
    first overdue check only notes it, the second, a loop turn later, drops it."""
    link = Link(url)
    try:
        await link.call("PING")
        pending = asyncio.ensure_future(link.call("BLPOP", "pmi:test:never", 0))
        await asyncio.sleep(STALL_SECONDS + 0.5)
        link.check_stall()
        await asyncio.sleep(0.2)
        after_first = pending.done()
        link.check_stall()
        try:
            await asyncio.wait_for(pending, 5)
        except RedisUnavailableError:
            return after_first, True
        return after_first, False
    finally:
        link.close()


def test_a_reply_overdue_at_two_checks_drops_the_connection(
        shared_redis: redis.Redis) -> None:
    assert asyncio.run(_stuck_redis(index_redis_url())) == (False, True)
