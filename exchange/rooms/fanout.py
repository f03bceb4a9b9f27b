"""One delivery per room per process: the rooms' process-local registry of open sockets.

Each process (each event loop) has one ``Hub``: one channel of the channel layer of its
own, added to the group of every room that has a socket open in this process, and one task
reading that channel. A room's event (``exchange/rooms/broadcast.py``) thus arrives once
per process, whatever the number of sockets, and the hub hands it to each local socket of
the room: a line's frame, serialised once by its sender, is the same text for every socket.

The hub's one sender task writes a line's frame to each ready socket in turn, without a
task per socket: a send completes at once unless the socket's buffer is full, so a line
reaches a room of any size in a few turns of the event loop (``SENDS_PER_TURN``). A
socket that is busy with a frame of its own, has something waiting, or was slow gets it
through its own outbox and task (``RoomConsumer.deliver``) instead. If a send keeps the
sender waiting for ``STALL_SECONDS`` (a reader that does not read), the sender stops
waiting for it, and that socket gets this and every later frame through its outbox: a
reader that does not read holds up only itself after that. Every socket gets the room's
events in the order the room's group got them: the sender handles them in that order,
and once anything is in a socket's outbox everything after it goes there too.

Only the layer's public API is used (``new_channel``, ``group_add``, ``group_discard``,
``receive``): it works the same with the Redis Pub/Sub layer and the in-memory layer of
the embedded demo.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import Any, Protocol

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# How often the hub renews its group memberships: the in-memory layer forgets a member
# after a day (``group_expiry``); the Redis Pub/Sub layer keeps them, and renewing is free.
RENEW_SECONDS = 3600.0
# How long the sender waits for one socket's send before it leaves it to its own outbox.
STALL_SECONDS = 0.1
# The sender lets the event loop run other work (a speaker's next frame, a database
# reply) after this many sends, so a large room does not hold the loop for a whole line.
SENDS_PER_TURN = 50


class Member(Protocol):
    def deliver(self, item: str | dict[str, Any]) -> None:
        """Take a room's frame (``str``, sent as is) or event (``dict``) in order."""

    def ready(self) -> bool:
        """Whether a frame may be sent to it at once (nothing of its own waiting)."""

    async def send_frame(self, text: str) -> None:
        """Send a line's frame now."""

    def stalled(self, text: str) -> None:
        """Its send of ``text`` was given up: take it, and every later frame, by
        ``deliver``."""


class Hub:
    """The sockets of each room open in this process, and the one layer channel that
    brings every room's events here."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.rooms: dict[str, dict[Member, None]] = {}  # group -> its sockets, in join order
        self.subscribed: set[str] = set()  # groups the hub's channel is a member of
        self.events = 0  # events taken from the layer (one per room event, not per socket)
        self.channel: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: deque[tuple[str, str | dict[str, Any]]] = deque()  # (group, item)
        self._sender: asyncio.Task[None] | None = None
        self._sending_to: Member | None = None  # whose send the sender awaits
        self._stalled: Member | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def join(self, group: str, member: Member) -> None:
        """Add a socket to a room; returns once this process listens to the room."""
        self.rooms.setdefault(group, {})[member] = None
        await self._sync(group)

    async def leave(self, group: str, member: Member) -> None:
        members = self.rooms.get(group)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self.rooms[group]
        await self._sync(group)

    async def _sync(self, group: str) -> None:
        """Listen to ``group`` exactly while a local socket is in it (under the lock, so a
        last leave and a first join cannot cross)."""
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                loop = asyncio.get_running_loop()
                self._tasks = [loop.create_task(self._receive()), loop.create_task(self._renew())]
            wanted = group in self.rooms
            if wanted and group not in self.subscribed:
                await self.layer.group_add(group, self.channel)
                self.subscribed.add(group)
            elif not wanted and group in self.subscribed:
                self.subscribed.discard(group)
                await self.layer.group_discard(group, self.channel)

    async def _receive(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room events not received")
                await asyncio.sleep(1)
                continue
            self.events += 1
            try:
                self.dispatch(event)
            except Exception:
                log.exception("room event %s not handed out", event.get("type"))

    def dispatch(self, event: dict[str, Any]) -> None:
        """Queue one room event for the sender (a line: its frame's text)."""
        group = event.get("room", "")
        if group not in self.rooms:
            return
        item: str | dict[str, Any] = event["frame"] if event["type"] == "room.message" else event
        self._pending.append((group, item))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, item = self._pending.popleft()
                members = list(self.rooms.get(group, ()))
                self._watchdog = loop.call_later(STALL_SECONDS, self._watch)
                try:
                    for count, member in enumerate(members, 1):
                        if isinstance(item, str) and member.ready():
                            await self._send_one(member, item)
                        else:
                            member.deliver(item)
                        if count % SENDS_PER_TURN == 0:
                            await asyncio.sleep(0)
                finally:
                    self._watchdog.cancel()
        finally:
            self._sender = None

    async def _send_one(self, member: Member, text: str) -> None:
        self._sending_to = member
        try:
            await member.send_frame(text)
        except asyncio.CancelledError:
            if self._stalled is not member:
                raise
            # The watchdog's doing: nothing was written (a send waits before it writes).
            self._stalled = None
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            member.stalled(text)
            # the rest of the room gets as long again
            self._watchdog = asyncio.get_running_loop().call_later(STALL_SECONDS, self._watch)
        except Exception:  # the socket closed under us
            log.debug("room socket gone while sending", exc_info=True)
        finally:
            self._sending_to = None

    def _watch(self) -> None:
        """The sender still waits for one socket's send: stop waiting for it. If it is
        only letting the loop run (a large room, a busy machine), look again later."""
        if self._sender is None:
            return
        if self._sending_to is not None:
            self._stalled = self._sending_to
            self._sender.cancel()
        else:
            self._watchdog = asyncio.get_running_loop().call_later(STALL_SECONDS, self._watch)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            async with self._lock:
                for group in list(self.subscribed):
                    try:
                        await self.layer.group_add(group, self.channel)
                    except Exception:
                        log.warning("room group %s not renewed", group, exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub | None:
    """This event loop's hub (None without a channel layer)."""
    layer = get_channel_layer()
    if layer is None:
        return None
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None or found.layer is not layer:
        found = _hubs[loop] = Hub(layer)
    return found
