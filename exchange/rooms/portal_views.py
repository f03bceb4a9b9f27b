"""The portal's room pages: the history rendered on the server (readable without
JavaScript), the live client (static/rooms/room.js) on top, and the moderators' rules
form."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import APIException, NotFound

from exchange.accounts.models import User
from exchange.core.errors import ServiceError
from exchange.rooms import selectors, services
from exchange.rooms.models import Room, RoomKind


def _page(request: HttpRequest, kind: str, target: str) -> HttpResponse:
    try:
        room = selectors.room_get_visible(user=request.user, kind=kind, target=target)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    seen = selectors.standing(room, request.user)
    if not seen.may_read:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return render(request, "portal/forbidden.html", {
            "reason": _("This room is for members holding a licence for the work.")},
            status=403)
    if request.method == "POST":
        return _rules(request, room)
    return render(request, "rooms/room.html", {
        "room": room, "title": selectors.room_title(room), "seen": seen,
        "history": selectors.room_recent(room, settings.ROOMS_HISTORY_ON_JOIN),
        "socket_path": f"/ws/rooms/{kind}/{target}/",
        "max_chars": settings.ROOMS_MAX_CHARS,
        "is_work": room.kind == RoomKind.WORK,
    })


def _rules(request: HttpRequest, room: Room) -> HttpResponse:
    user = request.user
    if not isinstance(user, User):
        return redirect_to_login(request.get_full_path())
    if not selectors.is_moderator(room, user):
        return render(request, "portal/forbidden.html", {
            "reason": _("Only the room's rights holder and staff moderate it.")}, status=403)
    seconds = request.POST.get("slow_mode_seconds", "0").strip()
    try:
        services.room_rules_update(
            room=room, actor=user,
            restricted=(request.POST.get("restricted") == "on") if room.kind == RoomKind.WORK
            else None,
            slow_mode_seconds=int(seconds) if seconds.isdigit() and len(seconds) < 6 else -1)
    except (ServiceError, APIException) as error:
        messages.error(request, getattr(error, "message", str(error)))
    else:
        messages.success(request, _("The room's rules are saved."))
    return redirect(request.path)


@require_http_methods(["GET", "POST"])
def work_room(request: HttpRequest, work_id: str) -> HttpResponse:
    return _page(request, RoomKind.WORK, work_id)


@require_http_methods(["GET", "POST"])
def member_room(request: HttpRequest, username: str) -> HttpResponse:
    return _page(request, RoomKind.MEMBER, username)
