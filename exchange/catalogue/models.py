"""Works on sale: what they are, what they cost, and on what terms."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class MediaType(models.TextChoices):
    IMAGE = "image", _("Image")
    AUDIO = "audio", _("Audio")
    VIDEO = "video", _("Video")
    DOCUMENT = "document", _("Document")


class DeliveryMode(models.TextChoices):
    """How a buyer's copy gets its mark (docs/SEALED.md): marked by the buyer's agent
    after decryption, or sealed (the agent's personal table decrypts the shared sealed
    container straight into a marked copy; pictures and PCM recordings)."""

    MARKED = "marked", _("Marked by the buyer's agent")
    SEALED = "sealed", _("Sealed (decrypts only into a marked copy)")


class WorkStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    READY = "ready", _("Ready")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    FAILED = "failed", _("Failed")


class Work(models.Model):
    # A UUID, not a counter: the id goes into manifests and licences seen by every peer,
    # and must not reveal how many works exist or be guessable.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="works"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    media_type = models.CharField(max_length=16, choices=MediaType.choices)
    content_type = models.CharField(max_length=100)
    original_filename = models.CharField(max_length=255, blank=True)
    # Works registered before sealed delivery stay "marked"; new ones get the default of
    # their media type (``catalogue.delivery``) when they are registered.
    delivery_mode = models.CharField(max_length=8, choices=DeliveryMode.choices,
                                     default=DeliveryMode.MARKED)

    price_minor = models.BigIntegerField(help_text="Price in minor units of the currency.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code.")

    allowed_uses = models.JSONField(default=list)
    licence_days = models.PositiveIntegerField(help_text="How long a licence stays valid.")
    byte_allowance_multiple = models.PositiveSmallIntegerField(
        help_text="Bytes a licence may fetch, as a multiple of the work's size (retries need > 1)."
    )
    device_limit = models.PositiveSmallIntegerField(
        default=3, help_text="How many of one member's devices may hold a live licence at once."
    )

    status = models.CharField(
        max_length=16, choices=WorkStatus.choices, default=WorkStatus.PROCESSING, db_index=True
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True)
    master_path = models.CharField(
        max_length=255, help_text="Relative to the masters folder; never served by the web."
    )
    preview_path = models.CharField(max_length=255, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="work_price_positive"),
            models.CheckConstraint(condition=Q(size_bytes__gt=0), name="work_size_positive"),
            models.CheckConstraint(condition=Q(licence_days__gte=1), name="work_licence_days_min"),
            models.CheckConstraint(
                condition=Q(byte_allowance_multiple__gte=1, byte_allowance_multiple__lte=100),
                name="work_byte_allowance_range",
            ),
            models.CheckConstraint(
                condition=Q(device_limit__gte=1, device_limit__lte=10),
                name="work_device_limit_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in WorkStatus]), name="work_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(delivery_mode__in=[m.value for m in DeliveryMode]),
                name="work_delivery_mode_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def byte_allowance(self) -> int:
        return self.size_bytes * self.byte_allowance_multiple
