from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictIntegerField
from exchange.money.currencies import format_minor
from exchange.payments.models import Payout, PayoutSource, TopUp
from exchange.payments.providers.testpay import SCENARIOS


class TopUpIn(serializers.Serializer):
    amount_minor = StrictIntegerField(help_text="Minor units of the currency (cents for EUR).")
    currency = serializers.CharField(min_length=3, max_length=3)
    scenario = serializers.ChoiceField(
        choices=SCENARIOS["topup"], required=False, default="succeed",
        help_text="Test provider only: how the payment should behave.",
    )


class PayoutIn(serializers.Serializer):
    amount_minor = StrictIntegerField()
    currency = serializers.CharField(min_length=3, max_length=3)
    account = serializers.ChoiceField(
        choices=PayoutSource.choices, help_text="Which balance to pay out from."
    )
    scenario = serializers.ChoiceField(choices=SCENARIOS["payout"], required=False,
                                       default="succeed")


class TopUpOut(serializers.ModelSerializer):
    display = serializers.SerializerMethodField()

    class Meta:
        model = TopUp
        fields = ["id", "amount_minor", "currency", "display", "state", "failure_reason",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_display(self, obj: TopUp) -> str:
        return format_minor(obj.amount_minor, obj.currency)


class PayoutOut(serializers.ModelSerializer):
    display = serializers.SerializerMethodField()

    class Meta:
        model = Payout
        fields = ["id", "source", "amount_minor", "currency", "display", "state",
                  "failure_reason", "created_at", "updated_at"]
        read_only_fields = fields

    def get_display(self, obj: Payout) -> str:
        return format_minor(obj.amount_minor, obj.currency)
