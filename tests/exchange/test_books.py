"""The books check: silent on a ledger the services wrote, loud on each kind of damage.

The damage is done behind the services' backs (raw updates and inserts), as a crash, a
bad restore or a hand-edited row would; each case names the line the check must print.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from exchange.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from exchange.operations.books import books_check
from exchange.payments.models import Payout, TopUp, TopUpState
from exchange.purchases.models import Purchase, PurchaseState

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(rita, bob, carol, make_work, fund, device_of,
          django_capture_on_commit_callbacks) -> dict[str, Any]:
    """Top-ups (one declined), three purchases (held, settled with a seeder, refunded),
    and two payouts (paid, returned): every path money takes."""
    from exchange.payments.services import payout_apply, payout_request, topup_create
    from exchange.purchases.services import purchase_create, purchase_refund, purchase_settle

    fund(bob, 10_000)
    with django_capture_on_commit_callbacks(execute=True):
        declined = topup_create(user=bob, amount_minor=300, currency="EUR",
                                options={"scenario": "decline"})
    _keys, device = device_of(bob)
    works = [make_work(rita, title=f"W{i}", price_minor=4_000) for i in range(2)]
    works.append(make_work(rita, title="W2", price_minor=1_000))
    held, settled, refunded = (
        purchase_create(buyer=bob, work_id=w.pk, device_id=device.device_id) for w in works)
    purchase_settle(purchase_id=settled.pk, peer_bytes={carol.pk: 1000})
    purchase_refund(purchase_id=refunded.pk, reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        paid = payout_request(user=rita, source="earnings", amount_minor=1_000, currency="EUR")
    returned = payout_request(user=rita, source="earnings", amount_minor=1_100, currency="EUR")
    with transaction.atomic():
        payout_apply(event_type="payout.failed", reference=returned.provider_ref,
                     amount_minor=1_100, currency="EUR", reason="closed")
    return {"held": held, "settled": settled, "refunded": refunded, "declined": declined,
            "paid": paid, "returned": returned}


def test_books_written_by_the_services_balance(books) -> None:
    assert TopUp.objects.get(pk=books["declined"].pk).state == TopUpState.FAILED
    assert Payout.objects.get(pk=books["paid"].pk).state == "paid"
    assert books_check() == []
    out = StringIO()
    call_command("check_books", stdout=out)
    assert out.getvalue().strip() == "books balance"


@contextlib.contextmanager
def _triggers_off() -> Iterator[None]:
    """Write behind the ledger's triggers, as a restore of a damaged dump would."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # settle the checks already queued for this transaction while the books balance
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield
        cursor.execute("SET LOCAL session_replication_role = origin")


def _wallet(user: Any) -> Account:
    return Account.objects.get(kind=AccountKind.WALLET, owner=user, currency="EUR")


def test_a_cached_balance_that_drifts_is_found(books, bob) -> None:
    wallet = _wallet(bob)
    # 10,000 topped up, 4,000 + 4,000 + 1,000 spent, 1,000 refunded: 2,000 left
    assert wallet.balance == 2_000
    Account.objects.filter(pk=wallet.pk).update(balance=2_500)
    assert books_check() == [
        f"wallet account #{wallet.pk} caches 2500 but its postings sum to 2000"]


def test_an_unbalanced_entry_is_found(books, bob) -> None:
    entry = JournalEntry.objects.get(kind=EntryKind.REFUND)
    with _triggers_off():  # PostgreSQL's own trigger would refuse this (as it should)
        Posting.objects.create(entry=entry, account=_wallet(bob), currency="EUR", amount=7)
    problems = books_check()
    assert f"entry #{entry.pk} does not balance in EUR: +7" in problems
    # the same 7 also breaks the wallet's cache and the money-in rule
    assert "EUR: accounts hold 9007 but top-ups less payouts are 9000" in problems


def test_a_topup_marked_succeeded_without_its_credit_is_found(books) -> None:
    TopUp.objects.filter(pk=books["declined"].pk).update(state=TopUpState.SUCCEEDED)
    assert books_check() == [
        "EUR: accounts hold 9000 but top-ups less payouts are 9300",
        f"top-up {books['declined'].pk} succeeded for 300 but was credited None",
    ]


def test_a_purchase_closed_without_its_entry_is_found(books, bob) -> None:
    held = books["held"]
    Purchase.objects.filter(pk=held.pk).update(state=PurchaseState.SETTLED)
    assert books_check() == [
        f"purchase {held.pk} is settled but has settlement entry False, refund entry False, "
        "settlement row False",
        f"escrow of user {bob.pk} in EUR holds 4000, held purchases 0",
    ]


def test_the_command_exits_1_and_prints_json(books, bob) -> None:
    Account.objects.filter(pk=_wallet(bob).pk).update(balance=1)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("check_books", "--json", stdout=out)
    assert exit_.value.code == 1
    assert out.getvalue().startswith('["wallet account #')
