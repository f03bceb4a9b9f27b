"""Finding a room and the one access check for it: who may see, read, speak, moderate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied

from exchange.accounts.models import Role, User
from exchange.catalogue.selectors import work_get_visible
from exchange.licensing.models import Licence
from exchange.rooms.models import Room, RoomKind, RoomMessage, RoomSanction, SanctionKind

KINDS = tuple(RoomKind.values)


def _room_for_work(work_id: object, user: User | AnonymousUser) -> Room:
    work = work_get_visible(user=user, work_id=work_id)  # a 404 for what is not public
    room = Room.objects.select_related("work", "owner").filter(work=work).first()
    if room is not None:
        return room
    try:
        with transaction.atomic():
            return Room.objects.create(kind=RoomKind.WORK, work=work, owner=work.owner)
    except IntegrityError:  # made by a concurrent first visitor
        return Room.objects.select_related("work", "owner").get(work=work)


def _room_for_member(username: str) -> Room:
    owner = User.objects.filter(username=username, role=Role.RIGHTS_HOLDER,
                                is_active=True).first()
    if owner is None:
        raise NotFound(_("No such room."))
    room = Room.objects.select_related("owner").filter(kind=RoomKind.MEMBER, owner=owner).first()
    if room is not None:
        return room
    try:
        with transaction.atomic():
            return Room.objects.create(kind=RoomKind.MEMBER, owner=owner)
    except IntegrityError:
        return Room.objects.select_related("owner").get(kind=RoomKind.MEMBER, owner=owner)


def room_get_visible(*, user: User | AnonymousUser, kind: str, target: str) -> Room:
    """The room of a work (``target`` its id) or of a rights holder (their username), made
    on first sight. A room is visible exactly when what it is about is: a work on sale
    (or one's own), an active rights holder. Anything else is a 404 that says no more."""
    if kind == RoomKind.WORK:
        return _room_for_work(target, user)
    if kind == RoomKind.MEMBER:
        return _room_for_member(target)
    raise NotFound(_("No such room."))


def is_moderator(room: Room, user: User | AnonymousUser) -> bool:
    return user.is_authenticated and (user.pk == room.owner_id or bool(user.is_staff))


def holds_licence(room: Room, user: User | AnonymousUser) -> bool:
    """A live licence (neither revoked nor expired) for the room's work."""
    if not user.is_authenticated or room.work_id is None:
        return False
    return Licence.objects.filter(buyer_id=user.pk, work_id=room.work_id, revoked_at__isnull=True,
                                  expires_at__gt=timezone.now()).exists()


def sanction_until(room: Room, user: User | AnonymousUser, kind: str) -> datetime | None:
    """When the member's live mute or kick in this room ends (the latest), if any."""
    if not user.is_authenticated:
        return None
    return (RoomSanction.objects.filter(room=room, member_id=user.pk, kind=kind,
                                        until__gt=timezone.now())
            .order_by("-until").values_list("until", flat=True).first())


@dataclass(frozen=True)
class Standing:
    """What one visitor may do in one room, and why not."""

    may_read: bool
    may_join: bool
    moderator: bool
    muted_until: datetime | None
    kicked_until: datetime | None
    refusal: str  # "" or a code: not_authenticated, licence_required, kicked


def standing(room: Room, user: User | AnonymousUser) -> Standing:
    moderator = is_moderator(room, user)
    kicked = None if moderator else sanction_until(room, user, SanctionKind.KICK)
    muted = None if moderator else sanction_until(room, user, SanctionKind.MUTE)
    if room.restricted and not moderator and not holds_licence(room, user):
        refusal = "not_authenticated" if not user.is_authenticated else "licence_required"
        return Standing(may_read=False, may_join=False, moderator=False, muted_until=None,
                        kicked_until=None, refusal=refusal)
    if kicked is not None:
        return Standing(may_read=True, may_join=False, moderator=False, muted_until=muted,
                        kicked_until=kicked, refusal="kicked")
    if not user.is_authenticated:
        return Standing(may_read=True, may_join=False, moderator=False, muted_until=None,
                        kicked_until=None, refusal="not_authenticated")
    return Standing(may_read=True, may_join=True, moderator=moderator, muted_until=muted,
                    kicked_until=None, refusal="")


def room_check_read(room: Room, user: User | AnonymousUser) -> Standing:
    """Raise unless ``user`` may read the room's history: a restricted room is for licence
    holders and its moderators only (401 for a visitor, 403 for a member without one)."""
    seen = standing(room, user)
    if not seen.may_read:
        if seen.refusal == "not_authenticated":
            raise NotAuthenticated(_("Log in to read this room: it is for licence holders."))
        raise PermissionDenied(_("This room is for members holding a licence for the work."))
    return seen


def room_check_moderator(room: Room, user: User | AnonymousUser) -> None:
    if not user.is_authenticated:
        raise NotAuthenticated(_("Log in to moderate a room."))
    if not is_moderator(room, user):
        raise PermissionDenied(_("Only the room's rights holder and staff moderate it."))


def room_history(room: Room) -> QuerySet[RoomMessage]:
    """Newest first."""
    return RoomMessage.objects.select_related("author").filter(room=room).order_by("-id")


def room_recent(room: Room, limit: int) -> list[RoomMessage]:
    """The last ``limit`` lines, oldest first (the order a reader reads them)."""
    if limit <= 0:
        return []
    return list(reversed(room_history(room)[:limit]))


def room_title(room: Room) -> str:
    if room.kind == RoomKind.WORK and room.work is not None:
        return room.work.title
    return room.owner.username
