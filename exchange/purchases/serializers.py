from __future__ import annotations

import datetime as dt
from typing import TypedDict

from rest_framework import serializers

from exchange.core.fields import StrictCharField, StrictIntegerField
from exchange.licensing.models import Licence
from exchange.money.currencies import format_minor
from exchange.money.fields import CurrencyField
from exchange.purchases.models import Invoice, Purchase, PurchaseState


class PurchaseIn(serializers.Serializer):
    work = serializers.UUIDField()
    device = StrictCharField(max_length=64, help_text="The device the licence is for.")
    expected_price_minor = StrictIntegerField(
        required=False, help_text="Refuse (409 price_changed) unless the price is still this."
    )
    expected_currency = CurrencyField(required=False)


class PurchaseOut(serializers.Serializer):
    # A plain serializer, not a ModelSerializer: it renders every purchase response, and
    # a ModelSerializer rebuilds its fields from the model on every instance.
    id = serializers.UUIDField(read_only=True)
    work = serializers.UUIDField(source="work_id")
    work_title = serializers.CharField(source="work.title")
    licence = serializers.UUIDField(source="licence_id")
    price_minor = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(read_only=True)
    display = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=PurchaseState.choices, read_only=True)
    receipt_due_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_display(self, purchase: Purchase) -> str:
        return format_minor(purchase.price_minor, purchase.currency)


class LicenceGrantOut(serializers.Serializer):
    id = serializers.UUIDField()
    token = serializers.CharField()
    watermark_payload = serializers.CharField()
    expires_at = serializers.DateTimeField()


class PurchaseCreatedOut(serializers.Serializer):
    purchase = PurchaseOut()
    licence = LicenceGrantOut()
    manifest = serializers.CharField(help_text="The work's signed manifest.")


class PurchaseBody(TypedDict):
    """What ``PurchaseOut`` renders."""

    id: str
    work: str
    work_title: str
    licence: str
    price_minor: int
    currency: str
    display: str
    state: str
    receipt_due_at: str | None
    created_at: str | None
    closed_at: str | None


class LicenceGrantBody(TypedDict):
    """What ``LicenceGrantOut`` renders."""

    id: str
    token: str
    watermark_payload: str
    expires_at: str | None


class PurchaseCreatedBody(TypedDict):
    """What ``PurchaseCreatedOut`` renders."""

    purchase: PurchaseBody
    licence: LicenceGrantBody
    manifest: str


_when = serializers.DateTimeField()


def purchase_created_body(purchase: Purchase, licence: Licence,
                          manifest: str) -> PurchaseCreatedBody:
    """What ``PurchaseCreatedOut`` renders, built directly.

    It answers every sale, and a DRF serializer deep-copies its declared fields on every
    instance (four of them here, nested): that cost more CPU than the sale's SQL. The
    serializers still describe the body in the schema; a test holds the two equal.
    """
    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else _when.to_representation(value)

    return {
        "purchase": {
            "id": str(purchase.pk), "work": str(purchase.work_id),
            "work_title": purchase.work.title, "licence": str(purchase.licence_id),
            "price_minor": purchase.price_minor, "currency": purchase.currency,
            "display": format_minor(purchase.price_minor, purchase.currency),
            "state": purchase.state, "receipt_due_at": when(purchase.receipt_due_at),
            "created_at": when(purchase.created_at), "closed_at": when(purchase.closed_at),
        },
        "licence": {"id": str(licence.pk), "token": licence.token,
                    "watermark_payload": str(licence.watermark_payload),
                    "expires_at": when(licence.expires_at)},
        "manifest": manifest,
    }


class InvoiceOut(serializers.ModelSerializer):
    number = serializers.CharField()
    purchase = serializers.UUIDField(source="purchase_id")
    display = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = ["number", "purchase", "issued_at", "buyer_name", "seller_name", "description",
                  "amount_minor", "currency", "display"]
        read_only_fields = fields

    def get_display(self, invoice: Invoice) -> str:
        return format_minor(invoice.amount_minor, invoice.currency)
