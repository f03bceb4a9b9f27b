"""Money in (top-ups) and out (payouts) through a payment provider, and the webhooks
that confirm them. The provider's word arrives only through signed webhooks; nothing is
credited on the strength of an API response alone."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TopUpState(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class ProviderPayment(models.Model):
    """What top-ups and payouts share: an amount, a user, the provider's reference."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="%(class)ss")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=32)
    provider_ref = models.CharField(max_length=64, unique=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0),
                                   name="%(class)s_amount_positive")
        ]


class TopUp(ProviderPayment):
    state = models.CharField(max_length=12, choices=TopUpState.choices,
                             default=TopUpState.PENDING, db_index=True)

    def __str__(self) -> str:
        return f"top-up {self.amount_minor} {self.currency} ({self.state})"


class PayoutState(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    RETURNED = "returned", _("Returned")


class PayoutSource(models.TextChoices):
    EARNINGS = "earnings", _("Rights holder earnings")
    SEEDING = "seeding", _("Seeding credit")
    COMPUTE = "compute", _("Compute credit")


class Payout(ProviderPayment):
    source = models.CharField(max_length=12, choices=PayoutSource.choices)
    state = models.CharField(max_length=12, choices=PayoutState.choices,
                             default=PayoutState.PENDING, db_index=True)

    def __str__(self) -> str:
        return f"payout {self.amount_minor} {self.currency} ({self.state})"


class WebhookEvent(models.Model):
    """Every webhook event we acted on, under a unique id: a replay finds its row and stops."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=128)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type}"
