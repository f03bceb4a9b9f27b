"""A purchase: the buyer's money held in escrow until delivery is confirmed."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PurchaseState(models.TextChoices):
    HELD = "held", _("Paid into escrow")
    SETTLED = "settled", _("Settled")
    REFUNDED = "refunded", _("Refunded")


class Purchase(models.Model):
    """The two-phase hold of a sale (as financial ledgers such as TigerBeetle do it): the
    price moves from the buyer's wallet into the buyer's escrow account, and this row is
    the pending hold; settlement posts it onward (in whole or in part, the rest refunded)
    or a timeout voids it, each exactly once. Escrow is one account per buyer and
    currency: no row shared by all buyers, and no new account per sale."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="purchases")
    work = models.ForeignKey("catalogue.Work", on_delete=models.PROTECT, related_name="purchases")
    licence = models.OneToOneField("licensing.Licence", on_delete=models.PROTECT,
                                   related_name="purchase", null=True)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # The split in force when bought, so later changes to the rates never rewrite a sale.
    fee_bps = models.PositiveIntegerField()
    seeding_bps = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=PurchaseState.choices,
                             default=PurchaseState.HELD, db_index=True)
    receipt_due_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="purchase_price_positive"),
            models.CheckConstraint(condition=Q(fee_bps__lte=10000) & Q(seeding_bps__lte=10000),
                                   name="purchase_rates_in_range"),
        ]

    def __str__(self) -> str:
        return f"purchase {self.pk} ({self.state})"


class Settlement(models.Model):
    """How one purchase's escrow was divided: the parts as posted, for invoices and audits."""

    purchase = models.OneToOneField(Purchase, on_delete=models.PROTECT, related_name="settlement")
    settled_minor = models.BigIntegerField()
    refunded_minor = models.BigIntegerField()
    royalty_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    seeding_minor = models.BigIntegerField()
    peer_bytes = models.JSONField(help_text="Verified bytes per serving user id.")
    peer_credit = models.JSONField(help_text="Seeding credit per serving user id.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"settlement of {self.purchase_id}"


class Invoice(models.Model):
    """The buyer's invoice for a purchase. Its number is the row id: unique and increasing
    (a rolled-back purchase can leave a gap; numbers are never reused)."""

    purchase = models.OneToOneField(Purchase, on_delete=models.PROTECT, related_name="invoice")
    issued_at = models.DateTimeField(auto_now_add=True)
    buyer_name = models.CharField(max_length=200)
    seller_name = models.CharField(max_length=200)
    description = models.CharField(max_length=300)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    def __str__(self) -> str:
        return f"invoice {self.number}"

    @property
    def number(self) -> str:
        return f"PM-{self.pk:08d}"
