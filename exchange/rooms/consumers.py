"""One member's socket in one room: frames in, lines and moderation out.

The protocol (docs/MEMBERS.md, "Chat rooms") in short. Client to server, JSON objects:
``{"type": "say", "text", "nonce"?}``; moderators also ``{"type": "mute"|"kick", "member",
"minutes", "reason"?}`` and ``{"type": "rules", "slow_mode_seconds"?, "restricted"?}``.
Server to client: ``joined`` (the room, the rules, the viewer's standing and the last
lines), ``message``, ``ack``, ``moderation``, ``rules``, ``error``.

A frame is measured before it is parsed. An abusive frame (too large, not a JSON object,
an unknown type, invalid UTF-8, more frames than the per-socket rate) gets an error frame
and a strike; ``ROOMS_MAX_STRIKES`` strikes close the socket with 4429. A refusal by a
rule (muted, slow mode, the member rate limit) is an error frame and no strike. Nothing
is stored unless the whole line is accepted, and a refusal reaches only its sender.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import translation
from django.utils.translation import gettext as _
from rest_framework.exceptions import APIException

from exchange.accounts.models import User
from exchange.core.errors import ServiceError
from exchange.core.member_text import utf8_text
from exchange.core.rate_limits import Rate
from exchange.rooms import fanout, selectors, services
from exchange.rooms.models import Room, SanctionKind

log = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's): the client shows why and does not
# reconnect on its own for any of them.
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403  # a restricted room without a licence, or barred after a kick
CLOSE_NOT_FOUND = 4404
CLOSE_KICKED = 4408
CLOSE_ABUSE = 4429


def _language(scope: dict[str, Any]) -> str:
    """The portal's language choice (its cookie), else the browser's first preference."""
    cookies = scope.get("cookies") or {}
    wanted = [cookies.get(settings.LANGUAGE_COOKIE_NAME, "")]
    for key, value in scope.get("headers", []):
        if key == b"accept-language":
            wanted.append(value.decode("latin-1").split(",")[0].split(";")[0].strip())
    for code in wanted:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return str(settings.LANGUAGE_CODE)


def _room_info(room: Room) -> dict[str, Any]:
    return {"kind": room.kind, "target": str(room.work_id) if room.work_id else room.owner.username,
            "title": selectors.room_title(room), "owner": room.owner.username,
            **services.rules_out(room)}


class RoomConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """A socket has no channel of its own: the room's events reach it through its process's
    hub (exchange/rooms/fanout.py), once per process, and then its ``deliver``."""

    # No channel layer for the socket itself (Channels gives a consumer one only for an
    # alias that is configured): the hub holds the process's one channel.
    channel_layer_alias = "rooms.sockets-listen-through-the-hub"
    room: Room | None = None
    user: User | AnonymousUser
    _hub: fanout.Hub | None = None
    _group = ""
    # While the socket handles its own frame (or joins), room events wait in the outbox:
    # a handler's own frames (a line's ack, an error) go first, as when Channels
    # dispatched one message at a time.
    _busy = False
    _slow = False  # a send once kept the hub waiting: this socket's frames go via its outbox
    _writer: asyncio.Task[None] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' own dispatch first closes stale database connections, a hop to the
        one thread that runs synchronous code, for every message: every database access
        here goes through ``database_sync_to_async``, which closes stale connections
        itself, so the handlers run without the hop."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox: deque[str | dict[str, Any]] = deque()

    async def connect(self) -> None:
        self._busy = True
        try:
            await self._connect()
        finally:
            self._resume()

    async def _connect(self) -> None:
        self.user = self.scope.get("user") or AnonymousUser()
        translation.activate(_language(self.scope))
        self.strikes = 0
        rate = Rate.parse(settings.ROOMS_FRAME_RATE)
        self.frame_rate = rate
        self.frame_times: deque[float] = deque(maxlen=rate.count)
        await self.accept()
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            room = await database_sync_to_async(selectors.room_get_visible)(
                user=self.user, kind=kwargs["kind"], target=kwargs["target"])
        except APIException:
            await self._refuse(CLOSE_NOT_FOUND, "not_found", _("No such room."))
            return
        # Listen first, then check: a kick that lands between the two still reaches us.
        await self._listen(room.group)
        joined, refusal = await database_sync_to_async(self._join)(room)
        if refusal is not None:
            await self._unlisten()
            await self._refuse(*refusal)
            return
        self.room = room
        await self._send(joined)

    def _join(self, room: Room) -> tuple[dict[str, Any], tuple[int, str, str] | None]:
        """The ``joined`` frame, or why not (a close code, a reason, a message)."""
        seen = selectors.standing(room, self.user)
        if not seen.may_join:
            if seen.refusal == "not_authenticated":
                return {}, (CLOSE_NOT_AUTHENTICATED, seen.refusal, _("Log in to join this room."))
            if seen.refusal == "kicked" and seen.kicked_until is not None:
                return {}, (CLOSE_FORBIDDEN, "kicked",
                            _("You were removed from this room until %(until)s.")
                            % {"until": seen.kicked_until.isoformat(timespec="minutes")})
            return {}, (CLOSE_FORBIDDEN, "licence_required",
                        _("This room is for members holding a licence for the work."))
        history = selectors.room_recent(room, settings.ROOMS_HISTORY_ON_JOIN)
        return {
            "type": "joined", "room": _room_info(room),
            "you": {"username": getattr(self.user, "username", ""), "moderator": seen.moderator,
                    "muted_until": seen.muted_until.isoformat() if seen.muted_until else None},
            "history": [services.message_out(line) for line in history],
        }, None

    async def disconnect(self, code: int) -> None:
        self.room = None
        await self._unlisten()

    # --- the room's events, through the process's hub ---------------------------------

    async def _listen(self, group: str) -> None:
        self._hub = fanout.hub()
        if self._hub is not None:
            self._group = group
            await self._hub.join(group, self)

    async def _unlisten(self) -> None:
        self._outbox.clear()
        hub, group = self._hub, self._group
        self._hub, self._group = None, ""
        if hub is not None:
            await hub.leave(group, self)

    def ready(self) -> bool:
        """Nothing waits for this socket, which has not been slow: the hub may send it a
        line's frame at once, from its own task."""
        return not (self._busy or self._slow or self._outbox or self._writer is not None)

    async def send_frame(self, text: str) -> None:
        if self.room is not None:
            await self.send(text_data=text)

    def stalled(self, text: str) -> None:
        """The hub gave up waiting for this socket's send (its reader is not reading):
        from now on its frames go through its outbox, starting with this one."""
        self._slow = True
        self.deliver(text)

    def deliver(self, item: str | dict[str, Any]) -> None:
        """From the hub, through the outbox: a line's frame (the same text for every
        socket) or an event."""
        self._outbox.append(item)
        if self._writer is None and not self._busy:
            self._writer = asyncio.create_task(self._write())

    def _resume(self) -> None:
        self._busy = False
        if self._outbox and self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Send what the outbox holds, in order, until it is empty or the socket is busy
        with a frame of its own."""
        try:
            while self._outbox and not self._busy:
                item = self._outbox.popleft()
                if isinstance(item, str):
                    if self.room is not None:
                        await self.send(text_data=item)
                elif item["type"] == "room.sanction":
                    await self.room_sanction(item)
                elif item["type"] == "room.rules":
                    await self.room_rules(item)
        except Exception:  # the socket closed under us: nothing more is for it
            log.debug("room socket gone while sending", exc_info=True)
            self._outbox.clear()
        finally:
            self._writer = None

    # --- frames in ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None
                      ) -> None:
        if self.room is None:
            return
        self._busy = True
        try:
            await self._receive(text_data, bytes_data)
        finally:
            self._resume()

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        if not self._frame_allowed():
            await self._strike("too_fast", _("Too many frames: slow down."))
            return
        limit = settings.ROOMS_MAX_FRAME_BYTES
        if bytes_data is not None:
            try:
                text = utf8_text(bytes_data, field="frame", max_bytes=limit)
            except ServiceError as error:
                await self._strike(error.code, error.message)
                return
        else:
            text = text_data or ""
            # A character is at most four bytes: the first test needs no encoding.
            if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
                await self._strike("too_large", _("A frame is at most %(limit)d bytes.")
                                   % {"limit": limit})
                return
        try:
            frame = json.loads(text)
        except ValueError:
            await self._strike("malformed", _("A frame is one JSON object."))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._strike("malformed", _("A frame is a JSON object with a \"type\"."))
            return
        handler = {"say": self._say, "mute": self._sanction, "kick": self._sanction,
                   "rules": self._rules}.get(frame["type"])
        if handler is None:
            await self._strike("unknown_type", _("Unknown frame type."))
            return
        try:
            await handler(frame)
        except ServiceError as error:
            await self._error(error.code, error.message, field=error.field,
                              retry_after=getattr(error, "retry_after", None))
        except APIException as error:
            await self._error(str(error.get_codes()), str(error.detail))

    def _frame_allowed(self) -> bool:
        """At most ``count`` frames in any ``seconds`` on this socket (a sliding window)."""
        now = time.monotonic()
        times = self.frame_times
        if len(times) == times.maxlen and now - times[0] < self.frame_rate.seconds:
            return False
        times.append(now)
        return True

    def _present(self) -> tuple[Room, User]:
        """The room and the member, for a socket that has joined (only members join)."""
        if self.room is None or not isinstance(self.user, User):
            raise ServiceError(_("Not in the room."), code="not_joined")
        return self.room, self.user

    async def _say(self, frame: dict[str, Any]) -> None:
        room, user = self._present()
        message, _new = await database_sync_to_async(services.room_message_say)(
            room=room, author=user, text=frame.get("text"), nonce=frame.get("nonce"))
        await self._send({"type": "ack", "nonce": frame.get("nonce"), "id": message.pk})

    async def _sanction(self, frame: dict[str, Any]) -> None:
        room, user = self._present()
        await database_sync_to_async(services.room_sanction)(
            room=room, actor=user, kind=frame["type"], member=frame.get("member"),
            minutes=frame.get("minutes"), reason=frame.get("reason", ""))

    async def _rules(self, frame: dict[str, Any]) -> None:
        room, user = self._present()
        self.room = await database_sync_to_async(services.room_rules_update)(
            room=room, actor=user, restricted=frame.get("restricted"),
            slow_mode_seconds=frame.get("slow_mode_seconds"))

    # --- events from the room's group -----------------------------------------------

    # Events of the room's group, from the outbox. One may arrive after a socket was
    # turned away (it listened before it was checked) or closed: then it is not for this
    # socket. A line's frame needs no handler: ``_write`` sends its text as it came.

    async def room_sanction(self, event: dict[str, Any]) -> None:
        if self.room is None:
            return
        if event["member_id"] == self.user.pk:
            if event["kind"] == SanctionKind.KICK:
                await self._refuse(CLOSE_KICKED, "kicked",
                                   _("You were removed from this room until %(until)s.")
                                   % {"until": event["until"][:16]})
                return
            await self._send({"type": "muted", "until": event["until"]})
            return
        await self._send({"type": "moderation", "action": event["kind"],
                          "member": event["member"], "until": event["until"],
                          "by": event["by"]})

    async def room_rules(self, event: dict[str, Any]) -> None:
        if self.room is None:
            return
        room = self.room
        rules = {"restricted": event["restricted"], "slow_mode_seconds": event["slow_mode_seconds"]}
        if rules["restricted"]:
            await database_sync_to_async(room.refresh_from_db)()
            seen = await database_sync_to_async(selectors.standing)(room, self.user)
            if not seen.may_join:
                await self._refuse(CLOSE_FORBIDDEN, "licence_required",
                                   _("This room is now for members holding a licence for the "
                                     "work."))
                return
        await self._send({"type": "rules", **rules})

    # --- frames out -----------------------------------------------------------------

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def _error(self, code: str, message: str, *, field: str | None = None,
                     retry_after: int | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if field:
            frame["field"] = field
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self._send(frame)

    async def _strike(self, code: str, message: str) -> None:
        self.strikes += 1
        await self._error(code, message)
        if self.strikes >= settings.ROOMS_MAX_STRIKES:
            await self._refuse(CLOSE_ABUSE, "abuse",
                               _("Closed after repeated invalid or too fast frames."))

    async def _refuse(self, code: int, reason: str, message: str) -> None:
        """An error frame saying why, then the close with its code."""
        self.room = None
        await self._unlisten()
        await self._error(reason, message)
        await self.close(code=code)
