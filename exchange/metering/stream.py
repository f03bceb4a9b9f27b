"""The metering hot path: accepted orders go into a Redis stream; a Celery task moves
them to the database in batches.

At least once into the stream; the flush inserts under the (licence, nonce) unique key,
so a re-delivered entry is ignored; and it acknowledges entries only after its database
transaction commits, so a worker that dies mid-batch leaves them pending, and the next
flush claims them again (XAUTOCLAIM): exactly once into the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypedDict, cast

import redis

from exchange.core.redis_clients import redis_client


class OrderEntry(TypedDict):
    """One accepted order as the stream carries it (JSON) and the flush records it."""

    licence: str
    nonce: str
    device: str
    user: int
    piece: int
    bytes: int
    iat: int


#: a stream entry as redis-py reads it (bytes, not decoded): its id and its fields
_Entry = tuple[bytes, dict[bytes, bytes]]

STREAM = "peermark:metering:orders"
GROUP = "flushers"
FLUSH_FLAG = "peermark:metering:flush-queued"


def client() -> redis.Redis:
    return redis_client("the metering stream")


def ensure_group(conn: redis.Redis) -> None:
    try:
        conn.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# Marks each order seen and appends it, in one atomic step, so an order can never be
# marked seen without being in the stream (it would then be lost as a "duplicate").
_APPEND_NEW = """
local added = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', ARGV[2], '*', 'o', ARGV[i + 2])
    added[i] = 1
  else
    added[i] = 0
  end
end
return added
"""
SEEN_TTL_SECONDS = 14 * 86400


def append_new(conn: redis.Redis, entries: list[OrderEntry]) -> list[bool]:
    """Append the orders not seen before; say which were new."""
    if not entries:
        return []
    keys = [f"peermark:metering:seen:{e['licence']}:{e['nonce']}" for e in entries]
    bodies = [json.dumps(e, separators=(",", ":")) for e in entries]
    added = conn.eval(_APPEND_NEW, len(keys), *keys, SEEN_TTL_SECONDS, STREAM, *bodies)
    return [bool(flag) for flag in added]


def read_batch(conn: redis.Redis, *, consumer: str, count: int,
               min_idle_ms: int) -> list[tuple[bytes, OrderEntry]]:
    """Entries abandoned by a dead consumer first, then new ones."""
    ensure_group(conn)
    # XAUTOCLAIM gives (None, None) for an entry deleted while it was pending.
    claimed: list[tuple[bytes | None, dict[bytes, bytes] | None]] = conn.xautoclaim(
        STREAM, GROUP, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count)[1]
    entries: list[_Entry] = [(entry_id, fields) for entry_id, fields in claimed
                             if entry_id is not None and fields]
    if len(entries) < count:
        # one [stream, entries] pair per stream read
        fresh: list[tuple[bytes, list[_Entry]]] = conn.xreadgroup(  # type: ignore[assignment]
            GROUP, consumer, {STREAM: ">"}, count=count - len(entries)
        )
        for _stream, items in fresh or []:
            entries += items
    return [(entry_id, cast(OrderEntry, json.loads(fields[b"o"])))
            for entry_id, fields in entries]


def acknowledge(conn: redis.Redis, ids: list[bytes]) -> None:
    if ids:
        pipe = conn.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()


def backlog(conn: redis.Redis) -> int:
    return int(conn.xlen(STREAM))


def schedule_flush_once(conn: redis.Redis, queue: Callable[[], None]) -> None:
    """Queue one flush task for a burst of submissions, not one per request."""
    if conn.set(FLUSH_FLAG, b"1", nx=True, ex=2):
        queue()


def clear_flush_flag(conn: redis.Redis) -> None:
    conn.delete(FLUSH_FLAG)
