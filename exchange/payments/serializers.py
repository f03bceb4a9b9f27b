from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from exchange.core.fields import StrictIntegerField
from exchange.money.currencies import format_minor
from exchange.money.fields import CurrencyField
from exchange.payments.models import Payout, PayoutSource, TopUp
from exchange.payments.providers import provider_options
from exchange.payments.providers.base import PaymentKind


class _ProviderOptionsIn(serializers.Serializer):
    """Adds the configured provider's own options (``PaymentProvider.options``) as
    optional choice fields, and gathers their values into ``validated_data["options"]``.

    The fields are asked of the provider per request, not named here, so this module
    knows no provider, and the schema shows the options of the one configured: the test
    provider's ``scenario`` where it is on, nothing for a provider without options."""

    payment_kind: ClassVar[PaymentKind]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for option in provider_options(self.payment_kind):
            if option.name in fields:
                raise ValueError(f"provider option {option.name!r} hides a field")
            fields[option.name] = serializers.ChoiceField(
                choices=option.choices, required=False, default=option.default,
                help_text=option.help_text or None,
            )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        names = [option.name for option in provider_options(self.payment_kind)]
        attrs["options"] = {name: attrs.pop(name) for name in names if name in attrs}
        return attrs


class TopUpIn(_ProviderOptionsIn):
    """Money for your wallet, collected by the payment provider."""

    payment_kind = "topup"
    amount_minor = StrictIntegerField(help_text="Minor units of the currency (cents for EUR).")
    currency = CurrencyField()


class PayoutIn(_ProviderOptionsIn):
    """Money paid out to you from your earnings, seeding credit or compute credit."""

    payment_kind = "payout"
    amount_minor = StrictIntegerField()
    currency = CurrencyField()
    account = serializers.ChoiceField(
        choices=PayoutSource.choices, help_text="Which balance to pay out from."
    )


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
