"""Random interleavings of every money movement keep the books right after every step."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.accounts.models import Role, User
from exchange.core.errors import ServiceError
from exchange.ledger.models import Account, AccountKind, JournalEntry, Posting
from exchange.ledger.selectors import account_balance
from exchange.payments.models import Payout, TopUp
from exchange.payments.services import payout_apply, payout_request, topup_apply, topup_create
from exchange.purchases.models import Purchase, PurchaseState
from exchange.purchases.services import purchase_create, purchase_refund, purchase_settle

pytestmark = pytest.mark.django_db

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(0, 2), st.integers(1, 3000)),
        st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, 1)),
        st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, 1)),
        st.tuples(st.just("settle"), st.integers(0, 50), st.lists(st.integers(0, 10**6),
                                                                  min_size=3, max_size=3)),
        st.tuples(st.just("refund"), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("payout"), st.integers(0, 3), st.integers(1000, 1500)),
        st.tuples(st.just("payout_result"), st.integers(0, 50), st.booleans()),
    ),
    min_size=10, max_size=30,
)


def _check_books(topped_up: int, paid_out: int) -> None:
    for entry in JournalEntry.objects.prefetch_related("postings"):
        assert sum(p.amount for p in entry.postings.all()) == 0, entry
    for account in Account.objects.filter(guarded=True):
        assert account.balance >= 0, account
        assert account.balance == account_balance(account), account
    held = Posting.objects.exclude(account__kind=AccountKind.CLEARING).aggregate(
        total=Sum("amount"))["total"] or 0
    assert held == topped_up - paid_out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opening=st.lists(st.integers(0, 6000), min_size=3, max_size=3), operations=OPERATIONS)
def test_every_step_keeps_the_ledger_balanced_and_no_wallet_negative(
    opening, operations, rita, make_work, device_of
) -> None:
    works = [make_work(rita, title="A", price_minor=700),
             make_work(rita, title="B", price_minor=1300)]
    with transaction.atomic():
        buyers = [User.objects.create_user(f"buyer{i}", password="x", role=Role.BUYER)
                  for i in range(3)]
        devices = [device_of(buyer)[1] for buyer in buyers]
        earners = [rita, *buyers]
        topped_up = paid_out = 0
        opening_topups = [("topup", who, amount) for who, amount in enumerate(opening) if amount]
        for name, who, arg in [*opening_topups, *operations]:
            try:
                with transaction.atomic():
                    topped_up, paid_out = _step(name, who, arg, buyers, devices, works, earners,
                                                topped_up, paid_out)
            except ServiceError:
                pass  # refused (no money, below threshold...): must have changed nothing
            _check_books(topped_up, paid_out)
        transaction.set_rollback(True)


def _step(name: str, who: int, arg: Any, buyers: list[User], devices: list[Any],
          works: list[Any], earners: list[User], topped_up: int, paid_out: int) -> tuple[int, int]:
    if name == "topup":
        topup = topup_create(user=buyers[who], amount_minor=arg, currency="EUR")
        topup_apply(event_type="topup.succeeded", reference=topup.provider_ref,
                    amount_minor=arg, currency="EUR", reason="")
        return topped_up + TopUp.objects.get(pk=topup.pk).amount_minor, paid_out
    if name == "buy":
        purchase_create(buyer=buyers[who], work_id=works[arg].pk, device_id=devices[who].pk)
        return topped_up, paid_out
    held = list(Purchase.objects.filter(state=PurchaseState.HELD).order_by("created_at"))
    if name == "settle" and held:
        purchase = held[who % len(held)]
        peers = {user.pk: served for user, served in zip(earners[1:], arg, strict=True)}
        purchase_settle(purchase_id=purchase.pk, peer_bytes=peers)
    elif name == "refund" and held:
        purchase_refund(purchase_id=held[who % len(held)].pk, reason="test")
    elif name == "payout":
        user = earners[who]
        source = "earnings" if user.role == Role.RIGHTS_HOLDER else "seeding"
        payout_request(user=user, source=source, amount_minor=arg, currency="EUR")
    elif name == "payout_result":
        pending = list(Payout.objects.filter(state="pending").order_by("created_at"))
        if pending:
            payout = pending[who % len(pending)]
            payout_apply(event_type="payout.paid" if arg else "payout.failed",
                         reference=payout.provider_ref, amount_minor=payout.amount_minor,
                         currency="EUR", reason="closed account")
            if arg:
                paid_out += payout.amount_minor
    return topped_up, paid_out

