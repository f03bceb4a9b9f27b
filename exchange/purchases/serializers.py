from __future__ import annotations

from rest_framework import serializers

from exchange.api.fields import StrictIntegerField
from exchange.money.currencies import format_minor
from exchange.purchases.models import Invoice, Purchase, PurchaseState


class PurchaseIn(serializers.Serializer):
    work = serializers.UUIDField()
    device = serializers.CharField(max_length=64, help_text="The device the licence is for.")
    expected_price_minor = StrictIntegerField(
        required=False, help_text="Refuse (409 price_changed) unless the price is still this."
    )
    expected_currency = serializers.CharField(min_length=3, max_length=3, required=False)


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
