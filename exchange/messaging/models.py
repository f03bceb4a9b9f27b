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
    every message here is ``platform`` (sent through the portal or the API, stored as
    sanitised HTML the platform can read). End-to-end encrypted messages between agents
    are never rows here: a ``direct`` one leaves nothing on the platform, a ``relayed``
    one is a ``RelayedMessage`` until its device fetches it (docs/MEMBERS.md, "Messages").
    """

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


class RelayedMessage(models.Model):
    """One device's sealed copy of an end-to-end encrypted message, held for it while it
    was offline (mode ``relayed``). ``document`` is the sender device's signed envelope
    (licensing/core/direct_messages.py): the platform checked the signature, the two
    members and devices and the blocks, and stores the ciphertext it cannot open. The
    recipient's agent fetches it and acknowledges it, which deletes the row."""

    MODE = "relayed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message_id = models.CharField(max_length=22, help_text="The envelope's ``mid``.")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="+")
    sender_device = models.ForeignKey("licensing.Device", on_delete=models.CASCADE,
                                      related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="+")
    recipient_device = models.ForeignKey("licensing.Device", on_delete=models.CASCADE,
                                         related_name="+")
    document = models.TextField(help_text="The signed envelope; its text is sealed.")
    size = models.PositiveIntegerField(help_text="The envelope's length in bytes.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient_device", "message_id"],
                                    name="relayed_once_per_device"),
        ]
        indexes = [models.Index(fields=["recipient", "created_at"])]

    def __str__(self) -> str:
        return (f"{self.sender_id} → {self.recipient_id} (sealed) "
                f"at {self.created_at:%Y-%m-%d %H:%M}")
