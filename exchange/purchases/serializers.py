from __future__ import annotations

from rest_framework import serializers

from exchange.api.fields import StrictIntegerField
from exchange.money.currencies import format_minor
from exchange.purchases.models import Invoice, Purchase


class PurchaseIn(serializers.Serializer):
    work = serializers.UUIDField()
    device = serializers.CharField(max_length=64, help_text="The device the licence is for.")
    expected_price_minor = StrictIntegerField(
        required=False, help_text="Refuse (409 price_changed) unless the price is still this."
    )
    expected_currency = serializers.CharField(min_length=3, max_length=3, required=False)


class PurchaseOut(serializers.ModelSerializer):
    work = serializers.UUIDField(source="work_id")
    work_title = serializers.CharField(source="work.title")
    licence = serializers.UUIDField(source="licence_id")
    display = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = ["id", "work", "work_title", "licence", "price_minor", "currency", "display",
                  "state", "receipt_due_at", "created_at", "closed_at"]
        read_only_fields = fields

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
