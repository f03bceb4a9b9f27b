"""Monthly statements: for each account of a party, the opening balance, every movement,
and the closing balance — all computed from postings, so they always agree with the
ledger."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import translation

from exchange.ledger.models import Account, EntryKind, Posting


@dataclass(frozen=True)
class StatementLine:
    at: dt.datetime
    entry_id: int
    kind: str
    memo: str
    amount_minor: int
    balance_minor: int

    @property
    def kind_label(self) -> str:
        """What kind of movement it is, in the active language (a top-up, compute units
        paid...); the stored kind itself for one the code no longer knows."""
        if self.kind in EntryKind.values:
            return str(EntryKind(self.kind).label)
        return self.kind


@dataclass
class AccountStatement:
    account: Account
    opening_minor: int
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def closing_minor(self) -> int:
        return self.lines[-1].balance_minor if self.lines else self.opening_minor


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    if not (2000 <= year <= 9998 and 1 <= month <= 12):
        raise ValueError("no such month")
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def statements_for(accounts: Iterable[Account], *, year: int, month: int) -> list[AccountStatement]:
    start, end = month_bounds(year, month)
    out = []
    for account in accounts:
        opening = Posting.objects.filter(account=account, entry__created_at__lt=start).aggregate(
            total=Coalesce(Sum("amount"), 0)
        )["total"]
        statement = AccountStatement(account=account, opening_minor=int(opening))
        balance = statement.opening_minor
        postings = (
            Posting.objects.filter(
                account=account, entry__created_at__gte=start, entry__created_at__lt=end
            )
            .select_related("entry")
            .order_by("entry__created_at", "entry_id", "id")
        )
        for posting in postings:
            balance += posting.amount
            statement.lines.append(
                StatementLine(
                    at=posting.entry.created_at, entry_id=posting.entry_id,
                    kind=posting.entry.kind, memo=posting.entry.memo,
                    amount_minor=posting.amount, balance_minor=balance,
                )
            )
        if statement.lines or statement.opening_minor:
            out.append(statement)
    return out


def statements_csv(statements: list[AccountStatement]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["account", "currency", "date", "entry", "kind", "memo", "amount_minor",
                     "balance_minor"])
    for statement in statements:
        account = statement.account
        with translation.override("en"):  # a file for tools, the same in every language
            name = account.get_kind_display()
        name += f" {account.reference}" if account.reference else ""
        writer.writerow([name, account.currency, "", "", "opening", "", "",
                         statement.opening_minor])
        for line in statement.lines:
            writer.writerow([name, account.currency, line.at.isoformat(), line.entry_id,
                             line.kind, line.memo, line.amount_minor, line.balance_minor])
        writer.writerow([name, account.currency, "", "", "closing", "", "",
                         statement.closing_minor])
    return out.getvalue()
