from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictCharField

ORDER_OUTCOMES = ("accepted", "duplicate", "rejected")


class OrdersIn(serializers.Serializer):
    orders = serializers.ListField(
        child=StrictCharField(max_length=4096, trim_whitespace=False),
        min_length=1, max_length=1000,
        help_text="Order tokens (JWS, typ pm-order+jwt) this agent's peers collected.",
    )


class OrderOutcomeOut(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ORDER_OUTCOMES)
    reason = serializers.CharField()


class OrdersOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = OrderOutcomeOut(many=True)


class ReceiptIn(serializers.Serializer):
    receipt = StrictCharField(max_length=200_000, trim_whitespace=False)


class ReceiptOut(serializers.Serializer):
    licence = serializers.UUIDField(source="licence_id")
    output_sha256 = serializers.CharField()
    marked = serializers.BooleanField()
    unmarked_reason = serializers.CharField()
    received_at = serializers.DateTimeField()
    settle_after = serializers.DateTimeField()
    settled_at = serializers.DateTimeField()
    needs_review = serializers.BooleanField()
