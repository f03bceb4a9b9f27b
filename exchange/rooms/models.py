"""A room per work and per rights holder, what was said there, and who may not speak."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RoomKind(models.TextChoices):
    WORK = "work", _("Work")
    MEMBER = "member", _("Rights holder")


class Room(models.Model):
    """One live room. A work's room is made the first time someone looks at it; so is a
    rights holder's. ``owner`` is the rights holder who moderates it (with staff)."""

    kind = models.CharField(max_length=8, choices=RoomKind.choices)
    work = models.OneToOneField("catalogue.Work", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="room")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="rooms")
    # Only a work's room can be restricted: to members holding a live licence for it.
    restricted = models.BooleanField(default=False)
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner"], condition=Q(kind="member"),
                                    name="room_one_per_member"),
            models.CheckConstraint(
                condition=(Q(kind="work", work__isnull=False)
                           | Q(kind="member", work__isnull=True, restricted=False)),
                name="room_kind_matches_target"),
            models.CheckConstraint(condition=Q(slow_mode_seconds__lte=3600),
                                   name="room_slow_mode_at_most_an_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.work_id or self.owner_id}"

    @property
    def group(self) -> str:
        """The channel layer group every socket in the room listens on."""
        return f"room.{self.pk}"


class RoomMessage(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="room_messages")
    text = models.TextField()
    # The sender's own id for the line: a resent frame (a reconnect after a lost
    # acknowledgement) finds the line already there instead of saying it twice.
    nonce = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["room", "-id"], name="room_message_latest"),
                   models.Index(fields=["room", "author", "-id"], name="room_message_by_author")]
        constraints = [
            models.UniqueConstraint(fields=["room", "author", "nonce"], condition=~Q(nonce=""),
                                    name="room_message_nonce_once"),
        ]

    def __str__(self) -> str:
        return f"{self.author_id}@{self.room_id}: {self.text[:40]}"


class SanctionKind(models.TextChoices):
    MUTE = "mute", _("Muted")
    KICK = "kick", _("Kicked")


class RoomSanction(models.Model):
    """A mute (may read, may not speak) or a kick (thrown out, may not come back) until
    ``until``."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sanctions")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="room_sanctions")
    kind = models.CharField(max_length=8, choices=SanctionKind.choices)
    until = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                           related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["room", "member", "kind", "until"],
                                name="room_sanction_live")]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_id}@{self.room_id} until {self.until:%Y-%m-%d %H:%M}"
