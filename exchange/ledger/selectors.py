"""Balances and movements, read as sums of postings (the cached balance is a shortcut)."""

from __future__ import annotations

from django.db.models import QuerySet, Sum
from django.db.models.functions import Coalesce

from exchange.accounts.models import User
from exchange.ledger.models import Account, Posting


def account_balance(account: Account) -> int:
    """The balance from the postings themselves, never from the cache."""
    total = Posting.objects.filter(account=account).aggregate(
        total=Coalesce(Sum("amount"), 0)
    )["total"]
    return int(total)


def accounts_of(user: User) -> QuerySet[Account]:
    return Account.objects.filter(owner=user).order_by("kind", "currency", "reference")


def wallet_balances(user: User) -> dict[str, int]:
    """Spendable money per currency."""
    return dict(
        Account.objects.filter(owner=user, kind="wallet", reference="").values_list(
            "currency", "balance"
        )
    )
