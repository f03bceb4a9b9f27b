"""Heartbeats gathered into one script call: every heartbeat that arrives while the event
loop is busy goes to Redis together on its next turn. Each request still waits for its
own answer (live, or announce again), so nothing is acknowledged that Redis did not do;
it just shares the round trip."""

from __future__ import annotations

import asyncio
import time

from peerindex import schema
from peerindex.link import Link, RedisError, RedisUnavailableError
from peerindex.store import heartbeat_args

MAX_BATCH = 2000


class Heartbeats:
    def __init__(self, link: Link, *, peer_ttl: int) -> None:
        self.link = link
        self.peer_ttl = peer_ttl
        self._pending: dict[str, list[asyncio.Future[bool]]] = {}
        self._scheduled = False
        self._running: set[asyncio.Future[None]] = set()

    def beat(self, device: str) -> asyncio.Future[bool]:
        """A future: True if the peer is live (and now refreshed), False if it must
        announce again."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(device, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)
        elif len(self._pending) >= MAX_BATCH:
            self._send()
        return future

    def _send(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: dict[str, list[asyncio.Future[bool]]]) -> None:
        now = time.time()
        try:
            missing = await self.link.script(
                schema.HEARTBEAT, [schema.SEEN],
                heartbeat_args(list(batch), now=int(now), now_ms=int(now * 1000),
                               peer_ttl=self.peer_ttl))
        except (RedisUnavailableError, RedisError) as exc:  # every waiter: a 503
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        gone = {m.decode() for m in missing}
        for device, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(device not in gone)
