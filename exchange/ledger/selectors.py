"""Balances and movements, read as sums of postings (the cached balance is a shortcut)."""

from __future__ import annotations

from django.db.models import QuerySet, Sum
from django.db.models.functions import Coalesce

from exchange.accounts.models import User
from exchange.ledger.models import Account, AccountKind, Posting


def account_balance(account: Account) -> int:
    """The balance from the postings themselves, never from the cache."""
    total = Posting.objects.filter(account=account).aggregate(
        total=Coalesce(Sum("amount"), 0)
    )["total"]
    return int(total)


def accounts_of(user: User) -> QuerySet[Account]:
    """Every account of a party, in statement order."""
    return Account.objects.filter(owner=user).order_by("kind", "currency", "reference")


def platform_accounts() -> QuerySet[Account]:
    """The platform's own accounts (fees, clearing), in statement order."""
    return Account.objects.filter(owner__isnull=True).order_by("kind", "currency")


def balances_of(user: User) -> QuerySet[Account]:
    """What a party holds and may see as balances: every account but escrow (money held
    for a sale in progress is not theirs to spend)."""
    return (Account.objects.filter(owner=user, reference="")
            .exclude(kind=AccountKind.ESCROW).order_by("kind", "currency"))
