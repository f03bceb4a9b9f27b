"""Every change to a room: saying a line, muting, kicking, changing the rules. Each is one
transaction with its audit row (for moderation), and is broadcast to the room's sockets
only after it commits."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.community.notifications import KIND_ROOM_MENTION, notify_once
from exchange.core.errors import ServiceError
from exchange.core.member_text import plain_text
from exchange.core.rate_limits import Rate, check
from exchange.rooms import selectors
from exchange.rooms.broadcast import send_on_commit
from exchange.rooms.models import Room, RoomKind, RoomMessage, RoomSanction, SanctionKind

NONCE = re.compile(r"^[\x21-\x7e]{1,64}$")
# "@username" not inside a word or an email address; at most a few are notified per line,
# so that one line cannot page a crowd.
MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
MAX_MENTIONS = 5
log = logging.getLogger(__name__)

MAX_SANCTION_MINUTES = 60 * 24 * 30
MAX_SLOW_MODE_SECONDS = 3600


def message_out(message: RoomMessage) -> dict[str, Any]:
    """A line as sockets and the API show it."""
    return {"id": message.pk, "author": message.author.username, "text": message.text,
            "sent_at": message.created_at.isoformat()}


def rules_out(room: Room) -> dict[str, Any]:
    return {"restricted": room.restricted, "slow_mode_seconds": room.slow_mode_seconds}


def _refuse_unless_may_speak(room: Room, author: User) -> None:
    seen = selectors.standing(room, author)
    if not seen.may_read and seen.refusal == "licence_required":
        raise ServiceError(_("This room is for members holding a licence for the work."),
                           code="licence_required", status_code=403)
    if seen.kicked_until is not None:
        raise ServiceError(_("You were removed from this room until %(until)s.")
                           % {"until": seen.kicked_until.isoformat(timespec="minutes")},
                           code="kicked", status_code=403)
    if seen.muted_until is not None:
        raise ServiceError(_("You are muted in this room until %(until)s.")
                           % {"until": seen.muted_until.isoformat(timespec="minutes")},
                           code="muted", status_code=403)
    if not seen.may_join:
        raise ServiceError(_("Log in to speak in this room."), code="not_authenticated",
                           status_code=401)


def room_message_say(*, room: Room, author: User, text: object,
                     nonce: object = None) -> tuple[RoomMessage, bool]:
    """Say one line: (the line, whether it is new). A nonce the author used before in this
    room returns that line and says nothing again, whatever the text."""
    if nonce is not None and (not isinstance(nonce, str) or not NONCE.match(nonce)):
        raise ServiceError(_("A nonce is 1 to 64 printable ASCII characters."),
                           code="invalid", field="nonce")
    if nonce:
        earlier = RoomMessage.objects.select_related("author").filter(
            room=room, author=author, nonce=nonce).first()
        if earlier is not None:
            return earlier, False
    body = plain_text(text, field="text", max_chars=settings.ROOMS_MAX_CHARS)
    room.refresh_from_db(fields=["restricted", "slow_mode_seconds"])
    _refuse_unless_may_speak(room, author)
    moderator = selectors.is_moderator(room, author)
    if room.slow_mode_seconds and not moderator:
        last = (RoomMessage.objects.filter(room=room, author=author).order_by("-id")
                .values_list("created_at", flat=True).first())
        if last is not None:
            wait = room.slow_mode_seconds - (timezone.now() - last).total_seconds()
            if wait > 0:
                seconds = int(wait + 0.999)
                raise ServiceError(
                    _("Slow mode: one line every %(every)d s; wait %(seconds)d s.")
                    % {"every": room.slow_mode_seconds, "seconds": seconds},
                    code="slow_mode", status_code=429)
    check("room_say", author.pk, Rate.parse(settings.ROOMS_SAY_RATE))
    try:
        with transaction.atomic():
            message = RoomMessage.objects.create(room=room, author=author, text=body,
                                                 nonce=nonce or "")
            # The frame is serialised once here, not once per socket in the room.
            frame = json.dumps({"type": "message", "message": message_out(message)},
                               ensure_ascii=False)
            send_on_commit(room.group, {"type": "room.message", "frame": frame})
            transaction.on_commit(lambda: _notify_mentions(room, message))
    except IntegrityError:  # the same nonce, sent twice at once
        return RoomMessage.objects.select_related("author").get(
            room=room, author=author, nonce=nonce), False
    return message, True


def room_path(room: Room) -> str:
    """The room's portal page."""
    if room.kind == RoomKind.WORK:
        return reverse("rooms:work", kwargs={"work_id": room.work_id})
    return reverse("rooms:member", kwargs={"username": room.owner.username})


def _notify_mentions(room: Room, message: RoomMessage) -> None:
    """Tell the members a line names with "@username" (who may read the room), once per
    line. After the line committed; a failure here is logged, the line stands."""
    names = list(dict.fromkeys(name.rstrip(".") for name in MENTION.findall(message.text)))
    if not names:
        return
    try:
        members = (User.objects.filter(username__in=names[:MAX_MENTIONS], is_active=True)
                   .exclude(pk=message.author_id))
        for member in members:
            if not selectors.standing(room, member).may_read:
                continue
            params = {"author": message.author.username, "room": selectors.room_title(room)}
            notify_once(recipient=member, kind=KIND_ROOM_MENTION,
                        subject=f"room-line:{message.pk}",
                        title=_("%(author)s mentioned you in the room “%(room)s”") % params,
                        body=message.text, url=room_path(room), params=params)
    except DatabaseError:
        log.warning("mentions of room line %s not notified", message.pk, exc_info=True)


def _member(room: Room, username: object) -> User:
    if not isinstance(username, str) or not username or len(username) > 150:
        raise ServiceError(_("Name a member by their username."), code="invalid",
                           field="member")
    member = User.objects.filter(username=username).first()
    if member is None:
        raise ServiceError(_("No such member."), code="invalid", field="member")
    if selectors.is_moderator(room, member):
        raise ServiceError(_("A room's moderators cannot be muted or kicked."),
                           code="moderator", field="member", status_code=409)
    return member


def _minutes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_SANCTION_MINUTES):
        raise ServiceError(_("Minutes: a whole number from 1 to %(max)d.")
                           % {"max": MAX_SANCTION_MINUTES}, code="invalid", field="minutes")
    return value


def room_sanction(*, room: Room, actor: User, kind: str, member: object, minutes: object,
                  reason: object = "") -> RoomSanction:
    """Mute or kick ``member`` for ``minutes``. A kick also closes their open sockets."""
    selectors.room_check_moderator(room, actor)
    if kind not in SanctionKind.values:
        raise ServiceError(_("Unknown sanction."), code="invalid", field="kind")
    target = _member(room, member)
    length = _minutes(minutes)
    why = plain_text(reason or "", field="reason", max_chars=500, required=False)
    with transaction.atomic():
        sanction = RoomSanction.objects.create(
            room=room, member=target, kind=kind, reason=why, by=actor,
            until=timezone.now() + timedelta(minutes=length))
        audit_record(actor=actor, action=f"room_{kind}", target=room,
                     data={"member": target.username, "minutes": length, "reason": why,
                           "sanction": sanction.pk})
        send_on_commit(room.group, {
            "type": "room.sanction", "kind": kind, "member_id": target.pk,
            "member": target.username, "until": sanction.until.isoformat(),
            "by": actor.username})
    return sanction


def room_rules_update(*, room: Room, actor: User, restricted: bool | None = None,
                      slow_mode_seconds: int | None = None) -> Room:
    """Change slow mode or the licence-holders-only rule (a work's room only)."""
    selectors.room_check_moderator(room, actor)
    changes: dict[str, Any] = {}
    if restricted is not None:
        if not isinstance(restricted, bool):
            raise ServiceError(_("Expected true or false."), code="invalid", field="restricted")
        if restricted and room.kind != RoomKind.WORK:
            raise ServiceError(_("Only a work's room can be kept for its licence holders."),
                               code="invalid", field="restricted")
        changes["restricted"] = restricted
    if slow_mode_seconds is not None:
        if isinstance(slow_mode_seconds, bool) or not isinstance(slow_mode_seconds, int) or not (
                0 <= slow_mode_seconds <= MAX_SLOW_MODE_SECONDS):
            raise ServiceError(_("Slow mode: a whole number of seconds from 0 to %(max)d.")
                               % {"max": MAX_SLOW_MODE_SECONDS}, code="invalid",
                               field="slow_mode_seconds")
        changes["slow_mode_seconds"] = slow_mode_seconds
    with transaction.atomic():
        room = (Room.objects.select_for_update(of=("self",)).select_related("work", "owner")
                .get(pk=room.pk))
        before = rules_out(room)
        for name, value in changes.items():
            setattr(room, name, value)
        if changes:
            room.save(update_fields=list(changes))
        if rules_out(room) != before:
            audit_record(actor=actor, action="room_rules", target=room,
                         data={"before": before, "after": rules_out(room)})
            send_on_commit(room.group, {"type": "room.rules", **rules_out(room)})
    return room
