"""One Redis connection per service process, shared by every request in flight.

Each command is queued the moment it is asked for, the queue written in one system call
on the event loop's next turn, and replies matched in order, so the commands of
concurrent requests travel pipelined on one socket (Redis answers in order on a
connection). redis-py's asyncio client takes a pooled connection per command and waits
out its round trip alone; measured on this service, the shared link answers about 1.5
times the lookups per second (docs/INDEX.md). Commands are packed and replies parsed
by hiredis, the Redis project's own C library.

When Redis is gone every waiting request fails at once with ``RedisUnavailableError`` (the
service answers 503 with Retry-After), and the next request after a short pause tries to
connect again. A reply still missing ``STALL_SECONDS`` after it was asked for, at two
of the watcher's checks in a row (1 to 3 s apart) with no reply read between them,
closes the socket: a stuck Redis is treated as a gone one (within about six seconds). A
process that was itself held up is not, nor a slow Redis that is still answering (its
replies complete the oldest waiter between checks).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

STALL_SECONDS = 2.0
RECONNECT_PAUSE_SECONDS = 0.5


class RedisUnavailableError(Exception):
    """Redis cannot be reached, or stopped answering."""


class RedisError(Exception):
    """Redis answered with an error."""


#: A command (a tuple) in Redis's wire format, by hiredis (C), called without a wrapper
#: (its stub types the tuple as of one item). Announces come packed already (wire.py).
_pack_tuple = cast(Callable[[tuple[str | bytes | int, ...]], bytes], hiredis.pack_command)


def _pack(args: Sequence[str | bytes | int]) -> bytes:
    return _pack_tuple(args if type(args) is tuple else tuple(args))


class _Protocol(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link
        self.reader = hiredis.Reader()
        # (who waits, since when, how many replies before its own to pass over: a
        # transaction's "OK" and "QUEUED"s, which say nothing EXEC's reply does not)
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float, int]] = (
            collections.deque())
        self._passed = 0  # replies passed over so far for the first in ``waiting``
        self.transport: asyncio.Transport | None = None
        self.outbox: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(data)

    def flush(self) -> None:
        data, self.outbox = b"".join(self.outbox), []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        gets, waiting = self.reader.gets, self.waiting
        while True:
            reply = gets()
            if reply is False:
                return
            if self._passed < waiting[0][2]:
                self._passed += 1
                continue
            future = waiting.popleft()[0]
            self._passed = 0
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(RedisError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self)
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(RedisUnavailableError("the connection to Redis was lost"))


class Link:
    """Commands and scripts on one shared connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError("the index speaks to Redis by a redis:// URL")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._failed_at = 0.0
        self._shas: dict[str, str] = {}
        self._overdue: asyncio.Future[Any] | None = None  # check_stall's first strike

    @property
    def up(self) -> bool:
        return self._protocol is not None

    def lost(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None
            self._failed_at = time.monotonic()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(loop.create_connection(
                lambda: _Protocol(self), self.host, self.port), STALL_SECONDS)
        except (TimeoutError, OSError) as exc:
            self._failed_at = time.monotonic()
            raise RedisUnavailableError(f"Redis at {self.host}:{self.port}: {exc}") from None
        setup: list[Sequence[str | bytes | int]] = []
        if self.password is not None:
            setup.append(["AUTH", *([self.username] if self.username else []), self.password])
        if self.db:
            setup.append(["SELECT", self.db])
        try:
            # A Redis that accepts and then says nothing (stopped, or a proxy before a dead
            # one) is as gone as one that refuses; a wrong password closes the socket too,
            # so a misconfiguration cannot pile up connections on Redis.
            for command in setup:
                await asyncio.wait_for(self._send(protocol, command), STALL_SECONDS)
        except (TimeoutError, RedisError) as exc:
            if protocol.transport is not None:
                protocol.transport.abort()
            self._failed_at = time.monotonic()
            raise RedisUnavailableError(f"Redis at {self.host}:{self.port}: {exc}") from None
        self._protocol = protocol
        return protocol

    async def _ready(self) -> _Protocol:
        if self._protocol is not None:
            return self._protocol
        if time.monotonic() - self._failed_at < RECONNECT_PAUSE_SECONDS:
            raise RedisUnavailableError("Redis was unreachable a moment ago")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, future: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not future.cancelled():
            future.exception()  # retrieved: the waiters each see it

    def _send(self, protocol: _Protocol, args: Sequence[str | bytes | int]
              ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if protocol.transport is None or protocol.transport.is_closing():
            future.set_exception(RedisUnavailableError("the connection to Redis is closing"))
            return future
        protocol.waiting.append((future, time.monotonic(), 0))
        protocol.write(_pack(args))
        return future

    async def call(self, *args: str | bytes | int) -> Any:
        protocol = await self._ready()
        return await self._send(protocol, args)

    async def calls(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Any]:
        """Several commands written together; their replies, in order (an error reply
        raises ``RedisError`` once all have come)."""
        protocol = await self._ready()
        futures = [self._send(protocol, command) for command in commands]
        return [await future for future in futures]

    def packed_transaction_soon(self, packed: bytes, count: int) -> asyncio.Future[Any]:
        """A transaction already in the wire format (MULTI, ``count`` commands, EXEC:
        wire.py packs announces), queued now on a live connection (no task of its own)
        and awaited later, so a request's writes travel with its next reads. Only EXEC's
        reply is waited for (a command refused while queueing makes EXEC fail)."""
        protocol = self._protocol
        if protocol is None:
            return asyncio.ensure_future(self._packed_transaction(packed, count))
        return self._queue_packed(protocol, packed, count)

    async def _packed_transaction(self, packed: bytes, count: int) -> Any:
        return await self._queue_packed(await self._ready(), packed, count)

    def _queue_packed(self, protocol: _Protocol, packed: bytes, count: int
                      ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if protocol.transport is None or protocol.transport.is_closing():
            future.set_exception(RedisUnavailableError("the connection to Redis is closing"))
            return future
        protocol.waiting.append((future, time.monotonic(), count + 1))
        protocol.write(packed)
        return future

    async def script(self, source: str, keys: Sequence[str],
                     args: Sequence[str | bytes | int]) -> Any:
        """EVALSHA, loading the script on first use or after a Redis restart."""
        sha = self._shas.get(source)
        if sha is None:
            digest = hashlib.sha1(source.encode(), usedforsecurity=False)
            sha = self._shas[source] = digest.hexdigest()
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except RedisError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.call("SCRIPT", "LOAD", source)
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    def check_stall(self) -> None:
        """Close a connection whose oldest reply is overdue at two checks in a row
        (the watcher's, 1 to 3 s apart). One overdue check is not enough: a process
        that was itself held up (a loaded machine, a paused VM) runs its timers before
        it reads its socket when it wakes, so the reply may be waiting there unread.
        The event loop reads it before the next check; a Redis that is truly stuck is
        dropped at that next check."""
        protocol = self._protocol
        if protocol is None or not protocol.waiting or protocol.transport is None:
            self._overdue = None
            return
        oldest, since, _ = protocol.waiting[0]
        if time.monotonic() - since <= STALL_SECONDS:
            self._overdue = None
        elif self._overdue is oldest:
            self._overdue = None
            protocol.transport.abort()
        else:
            self._overdue = oldest

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
