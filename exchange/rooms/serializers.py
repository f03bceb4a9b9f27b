"""Input and output shapes of the rooms API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from exchange.core.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from exchange.rooms.models import Room, RoomKind, RoomMessage, RoomSanction
from exchange.rooms.selectors import Standing, room_title
from exchange.rooms.services import MAX_SANCTION_MINUTES, MAX_SLOW_MODE_SECONDS


class RoomRulesOut(serializers.Serializer):
    restricted = serializers.BooleanField(
        help_text="Only members holding a live licence for the work (and moderators) may "
                  "read and speak.")
    slow_mode_seconds = serializers.IntegerField(
        help_text="Seconds between two lines of one member (0: off; moderators exempt).")


class StandingOut(serializers.Serializer):
    may_read = serializers.BooleanField()
    may_join = serializers.BooleanField(help_text="May open the WebSocket and speak.")
    moderator = serializers.BooleanField()
    muted_until = serializers.DateTimeField(allow_null=True)
    kicked_until = serializers.DateTimeField(allow_null=True)
    refusal = serializers.CharField(
        help_text="Why not, when not: `not_authenticated`, `licence_required`, `kicked`.")


class RoomOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RoomKind.choices)
    target = serializers.CharField(help_text="The work's id, or the rights holder's username.")
    title = serializers.CharField()
    owner = serializers.CharField(help_text="The rights holder who moderates the room.")
    rules = RoomRulesOut()
    you = StandingOut()
    websocket = serializers.CharField(help_text="The path of the room's WebSocket.")


def room_body(room: Room, seen: Standing) -> dict[str, Any]:
    target = str(room.work_id) if room.kind == RoomKind.WORK else room.owner.username
    return {
        "kind": room.kind, "target": target, "title": room_title(room),
        "owner": room.owner.username,
        "rules": {"restricted": room.restricted, "slow_mode_seconds": room.slow_mode_seconds},
        "you": {"may_read": seen.may_read, "may_join": seen.may_join,
                "moderator": seen.moderator, "muted_until": seen.muted_until,
                "kicked_until": seen.kicked_until, "refusal": seen.refusal},
        "websocket": f"/ws/rooms/{room.kind}/{target}/",
    }


class RoomMessageOut(serializers.ModelSerializer[RoomMessage]):
    author = serializers.CharField(source="author.username")
    sent_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = RoomMessage
        fields = ["id", "author", "text", "sent_at"]


class RoomRulesIn(serializers.Serializer):
    restricted = StrictBooleanField(required=False)
    slow_mode_seconds = StrictIntegerField(required=False, min_value=0,
                                           max_value=MAX_SLOW_MODE_SECONDS)


class SanctionIn(serializers.Serializer):
    member = StrictCharField(max_length=150, help_text="The member's username.")
    minutes = StrictIntegerField(min_value=1, max_value=MAX_SANCTION_MINUTES)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class SanctionOut(serializers.ModelSerializer[RoomSanction]):
    member = serializers.CharField(source="member.username")
    by = serializers.CharField(source="by.username", allow_null=True)

    class Meta:
        model = RoomSanction
        fields = ["id", "kind", "member", "until", "reason", "by", "created_at"]
