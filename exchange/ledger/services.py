"""Posting to the ledger: the one way money moves.

``ledger_post`` runs inside the caller's transaction (a purchase, a settlement, a
webhook), so that the money and the business record it belongs to commit together. It
locks the guarded accounts it touches with SELECT ... FOR UPDATE in ascending id order —
the same order in every transaction, so two of them can never wait on each other in a
cycle — and refuses any movement that would take one below zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Value, When

from exchange.accounts.models import User
from exchange.api.errors import ServiceError
from exchange.api.fields import INT64_MAX
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


def ledger_post(*, kind: str, reference: str, memo: str, legs: Sequence[Leg],
                fresh_reference: bool = False) -> JournalEntry:
    """Record one balanced journal entry; refuse it if a guarded account would go negative.

    Must run inside a transaction. Raises ``EntryAlreadyPostedError`` if an entry of this
    kind and reference exists (the caller decides whether that is a replay or a bug) and
    ``InsufficientFundsError`` naming the account that would go below zero. A caller that
    has just made the reference (a new purchase id) passes ``fresh_reference`` to skip the
    savepoint that turns a duplicate into that error: the unique constraint still holds.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_post must run inside transaction.atomic()")
    per_account = _check_legs(legs)
    accounts = {leg.account.pk: leg.account for leg in legs}
    guarded_ids = sorted(pk for pk, account in accounts.items() if account.guarded)
    locked = {
        account.pk: account
        for account in Account.objects.select_for_update().filter(pk__in=guarded_ids).order_by("pk")
    }
    for pk in guarded_ids:
        after = locked[pk].balance + per_account[pk]
        if after < 0:
            account = locked[pk]
            raise InsufficientFundsError(
                f"Not enough money in your {account.get_kind_display().lower()}: "
                f"{account.balance} {account.currency} available, "
                f"{-per_account[pk]} needed.",
            )
    if fresh_reference:
        entry = JournalEntry.objects.create(kind=kind, reference=reference, memo=memo[:200])
    else:
        try:
            with transaction.atomic():
                entry = JournalEntry.objects.create(kind=kind, reference=reference,
                                                    memo=memo[:200])
        except IntegrityError as exc:
            raise EntryAlreadyPostedError(f"{kind} {reference} is already posted") from exc
    Posting.objects.bulk_create(
        Posting(entry=entry, account_id=leg.account.pk, currency=leg.account.currency,
                amount=leg.amount)
        for leg in legs
    )
    changed = {pk: per_account[pk] for pk in guarded_ids if per_account[pk]}
    if changed:
        # One UPDATE for every cached balance the entry moves.
        Account.objects.filter(pk__in=changed).update(balance=F("balance") + Case(
            *(When(pk=pk, then=Value(delta)) for pk, delta in changed.items()),
            output_field=BigIntegerField(),
        ))
        for pk, delta in changed.items():
            accounts[pk].balance = locked[pk].balance + delta
    return entry
