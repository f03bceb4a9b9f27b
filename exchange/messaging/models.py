"""Private messages between two members: one conversation per pair, the messages in it,
the blocks members set, and the reports they make to the admins."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """The one thread between two members. The pair is stored in a fixed order (the lower
    user id first) so that a unique constraint keeps it one thread, whoever writes first."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    first = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="+")
    second = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_message_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="conversation_once_per_pair"),
            models.CheckConstraint(condition=Q(first__lt=F("second")),
                                   name="conversation_pair_ordered"),
        ]
        indexes = [models.Index(fields=["started_by", "created_at"])]

    def __str__(self) -> str:
        return f"{self.first_id} ↔ {self.second_id}"

    def other(self, user_id: int) -> int:
        """The other member's id."""
        return self.second_id if user_id == self.first_id else self.first_id


class Message(models.Model):
    """One message. ``mode`` says how it travelled and so what the platform could read:
    today every message is ``platform`` (sent through the portal or the API, stored as
    sanitised HTML the platform can read); end-to-end encrypted modes would be new
    choices here (docs/MEMBERS.md, "Messages")."""

    class Mode(models.TextChoices):
        PLATFORM = "platform", _("Through the platform")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE,
                                     related_name="messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="+")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.PLATFORM)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(help_text="Sanitised HTML (nh3), as stored and shown.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["conversation", "-created_at"]),
            models.Index(fields=["recipient", "read_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.sender_id} → {self.recipient_id} at {self.created_at:%Y-%m-%d %H:%M}"


class Block(models.Model):
    """``blocker`` accepts no messages from ``blocked``."""

    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="+")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once"),
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class MessageReport(models.Model):
    """A recipient's report of a message to the admins (listed in the Django admin)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["message", "reporter"], name="report_once"),
        ]

    def __str__(self) -> str:
        return f"report of {self.message_id} by {self.reporter_id}"
