"""Balances and movements, read as sums of postings (the cached balance is a shortcut)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Func, QuerySet, Sum
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


def platform_fees_by_period(*, entry_kind: str, since: dt.datetime, until: dt.datetime,
                            period: Func) -> dict[tuple[dt.date, str], int]:
    """What the platform's fee accounts took in [since, until) from journal entries of
    one kind (``compute_pay``: the compute market's fees), per period and currency.
    ``period`` truncates ``entry__created_at`` to the start of its period; periods with
    nothing are absent."""
    rows = (Posting.objects.filter(account__kind=AccountKind.FEES, account__owner__isnull=True,
                                   entry__kind=entry_kind, entry__created_at__gte=since,
                                   entry__created_at__lt=until)
            .annotate(period=period).values("period", "currency")
            .annotate(minor=Sum("amount")).order_by("period", "currency"))
    return {(row["period"], row["currency"]): int(row["minor"]) for row in rows}
