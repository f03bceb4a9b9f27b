"""Posting to the ledger: the one way money moves.

``ledger_post`` runs inside the caller's transaction (a purchase, a settlement, a
webhook), so that the money and the business record it belongs to commit together. It
moves the cached balance of each guarded account it touches with one conditional
``UPDATE … SET balance = balance + delta WHERE id = … AND balance + delta >= 0``, in
ascending id order: the statement locks the row, checks it and moves it at once, and the
same order in every transaction means two of them can never wait on each other in a
cycle. A movement that would take an account below zero updates no row, and is refused.

The balance moves and the postings are the only hand-written SQL of the platform, plain
``cursor.execute`` with parameters and the table names from the models' metadata: the
conditional move is the ledger's rule itself (one statement that locks, checks and
moves), and both run on every sale with only integers and short codes, the same SQL on
SQLite and PostgreSQL. Everything else goes through the ORM.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.core.errors import ServiceError
from exchange.core.fields import INT64_MAX
from exchange.ledger.models import GUARDED_KINDS, Account, AccountKind, JournalEntry, Posting


class InsufficientFundsError(ServiceError):
    status_code = 402
    code = "insufficient_funds"


class EntryAlreadyPostedError(Exception):
    """The (kind, reference) pair has an entry already: the event was handled before."""


class UnbalancedEntryError(ValueError):
    pass


@dataclass(frozen=True)
class Leg:
    account: Account
    amount: int


def account_get_or_create(
    *, kind: str, owner: User | None, currency: str, reference: str = ""
) -> Account:
    """The account, made on first use. Concurrent first uses meet at the unique constraint."""
    lookup = {"kind": kind, "currency": currency, "reference": reference}
    owner_filter = {"owner": owner} if owner is not None else {"owner__isnull": True}
    account = Account.objects.filter(**lookup, **owner_filter).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                **lookup, owner=owner, guarded=kind in GUARDED_KINDS
            )
    except IntegrityError:
        return Account.objects.get(**lookup, **owner_filter)


def platform_account(*, kind: str, currency: str) -> Account:
    if kind not in (AccountKind.FEES, AccountKind.CLEARING):
        raise ValueError(f"{kind} is not a platform account")
    return account_get_or_create(kind=kind, owner=None, currency=currency)


def _check_legs(legs: Sequence[Leg]) -> dict[int, int]:
    if len(legs) < 2:
        raise UnbalancedEntryError("an entry needs at least two postings")
    per_currency: dict[str, int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    for leg in legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise UnbalancedEntryError(f"amount {leg.amount!r} is not an integer")
        if leg.amount == 0 or abs(leg.amount) > INT64_MAX:
            raise UnbalancedEntryError(f"amount {leg.amount} is zero or out of range")
        per_currency[leg.account.currency] += leg.amount
        per_account[leg.account.pk] += leg.amount
    unbalanced = {c: s for c, s in per_currency.items() if s != 0}
    if unbalanced:
        raise UnbalancedEntryError(f"postings do not sum to zero: {unbalanced}")
    return per_account


def _move_balance_sql() -> str:
    """The rule itself: a guarded account moves only if it stays at zero or above."""
    table = connection.ops.quote_name(Account._meta.db_table)
    # The table name comes from the model's metadata; every value is a parameter.
    return f"UPDATE {table} SET balance = balance + %s WHERE id = %s AND balance + %s >= 0"  # noqa: S608


def _insert_postings_sql(count: int) -> str:
    table = connection.ops.quote_name(Posting._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * count)
    # The table name comes from the model's metadata; every value is a parameter.
    return f"INSERT INTO {table} (entry_id, account_id, currency, amount) VALUES {rows}"  # noqa: S608


def ledger_post(*, kind: str, reference: str, memo: str, legs: Sequence[Leg],
                fresh_reference: bool = False) -> JournalEntry:
    """Record one balanced journal entry; refuse it if a guarded account would go negative.

    Must run inside a transaction. Raises ``EntryAlreadyPostedError`` if an entry of this
    kind and reference exists (the caller decides whether that is a replay or a bug) and
    ``InsufficientFundsError`` naming the account that would go below zero. A caller that
    has just made the reference (a new purchase id) passes ``fresh_reference`` to skip the
    savepoint that turns a duplicate into that error: the unique constraint still holds.
    Either error marks the transaction for rollback, since balances may have moved.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_post must run inside transaction.atomic()")
    per_account = _check_legs(legs)
    accounts = {leg.account.pk: leg.account for leg in legs}
    with connection.cursor() as cursor:
        for pk in sorted(pk for pk, account in accounts.items() if account.guarded):
            delta = per_account[pk]
            if not delta:
                continue
            with transaction.mark_for_rollback_on_error():
                cursor.execute(_move_balance_sql(), [delta, pk, delta])
            if cursor.rowcount != 1:
                _refuse(accounts[pk], delta)
        if fresh_reference:
            entry = JournalEntry.objects.create(kind=kind, reference=reference, memo=memo[:200])
        else:
            try:
                with transaction.atomic():
                    entry = JournalEntry.objects.create(kind=kind, reference=reference,
                                                        memo=memo[:200])
            except IntegrityError as exc:
                transaction.set_rollback(True)
                raise EntryAlreadyPostedError(f"{kind} {reference} is already posted") from exc
        with transaction.mark_for_rollback_on_error():
            cursor.execute(_insert_postings_sql(len(legs)), [
                value for leg in legs
                for value in (entry.pk, leg.account.pk, leg.account.currency, leg.amount)
            ])
    return entry


def _refuse(account: Account, delta: int) -> NoReturn:
    """Refuse a movement that would take ``account`` below zero.

    Balances of accounts earlier in the order may have moved already, so the transaction
    is marked for rollback: a caller that catches the error cannot commit half an entry
    (its next query fails until its ``atomic`` block exits).
    """
    available = Account.objects.filter(pk=account.pk).values_list("balance", flat=True).first()
    transaction.set_rollback(True)
    raise InsufficientFundsError(
        _("Not enough money in your %(account)s: %(available)s %(currency)s available, "
          "%(needed)s needed.")
        % {"account": account.get_kind_display().lower(), "available": available,
           "currency": account.currency, "needed": -delta},
    )
