from __future__ import annotations

from rest_framework import serializers

from exchange.ledger.models import Account
from exchange.money.currencies import format_minor


class BalanceOut(serializers.ModelSerializer):
    balance_minor = serializers.IntegerField(source="balance")
    display = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["kind", "currency", "balance_minor", "display"]
        read_only_fields = fields

    def get_display(self, account: Account) -> str:
        return format_minor(account.balance, account.currency)


class StatementLineOut(serializers.Serializer):
    at = serializers.DateTimeField()
    entry_id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(
        help_text="The kind's name in the request's language (Accept-Language).")
    memo = serializers.CharField()
    amount_minor = serializers.IntegerField()
    balance_minor = serializers.IntegerField()


class AccountStatementOut(serializers.Serializer):
    kind = serializers.CharField(source="account.kind")
    reference = serializers.CharField(source="account.reference")
    currency = serializers.CharField(source="account.currency")
    opening_minor = serializers.IntegerField()
    closing_minor = serializers.IntegerField()
    lines = StatementLineOut(many=True)


class StatementOut(serializers.Serializer):
    period = serializers.CharField(help_text="The month, YYYY-MM.")
    accounts = AccountStatementOut(many=True)
