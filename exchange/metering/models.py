"""Every byte served, from the signed orders serving peers collect; and the receipts that
close a sale."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class MeteredOrder(models.Model):
    """One accepted order: a piece a serving peer sent under a licence.

    Unique per (licence, nonce): a re-submitted or re-delivered order is recorded once.
    ``counted_bytes`` is what the order adds to the licence's metered total: its bytes,
    or less once the licence's byte allowance is used up (the rest is not billed).
    """

    licence = models.ForeignKey("licensing.Licence", on_delete=models.PROTECT,
                                related_name="metered_orders")
    nonce = models.CharField(max_length=32)
    serving_device = models.ForeignKey("licensing.Device", on_delete=models.PROTECT,
                                       related_name="served_orders")
    serving_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="served_orders")
    piece = models.PositiveIntegerField()
    bytes = models.BigIntegerField()
    counted_bytes = models.BigIntegerField()
    issued_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["licence", "nonce"], name="metered_order_once")
        ]
        indexes = [models.Index(fields=["licence", "serving_user"])]

    def __str__(self) -> str:
        return f"{self.bytes} B of piece {self.piece} under {self.licence_id}"


class LicenceUsage(models.Model):
    """The running total of a licence's metered bytes, locked when orders are recorded so
    the allowance cap holds under concurrent flushes."""

    licence = models.OneToOneField("licensing.Licence", on_delete=models.PROTECT,
                                   primary_key=True, related_name="usage")
    metered_bytes = models.BigIntegerField(default=0)
    order_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.metered_bytes} B under {self.licence_id}"


class Receipt(models.Model):
    """The buyer's device-signed receipt: the copy it wrote and who served it."""

    licence = models.OneToOneField("licensing.Licence", on_delete=models.PROTECT,
                                   related_name="receipt")
    receipt_id = models.CharField(max_length=32, unique=True)
    token = models.TextField()
    output_sha256 = models.CharField(max_length=64)
    marked = models.BooleanField()
    unmarked_reason = models.CharField(max_length=32, blank=True)
    claimed_bytes = models.JSONField(help_text="Bytes per serving peer, as the buyer says.")
    received_at = models.DateTimeField(auto_now_add=True)
    settle_after = models.DateTimeField(db_index=True,
                                        help_text="Serving peers' orders have arrived by then.")
    settled_at = models.DateTimeField(null=True, blank=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    review_reason = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"receipt for {self.licence_id}"
