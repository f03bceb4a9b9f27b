"""Money under concurrency, on PostgreSQL: real threads, real row locks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db.models import Sum

from exchange.ledger.models import Account, AccountKind, Posting
from exchange.ledger.selectors import account_balance
from exchange.purchases.models import Purchase
from tests.support.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_concurrent_purchases_spend_exactly_what_the_wallet_holds(
    rita, bob, make_work, fund, device_of, api
) -> None:
    work = make_work(rita, price_minor=1000)
    fund(bob, 17_500)  # affords 17 purchases, not 18
    _, device = device_of(bob)
    clients = [api(bob) for _ in range(50)]

    def buy(index: int) -> int:
        response = clients[index].post(
            "/api/v1/purchases/", {"work": str(work.pk), "device": device.device_id},
            format="json", HTTP_IDEMPOTENCY_KEY=f"buy-{index}",
        )
        return response.status_code

    statuses = Counter(race(50, buy))
    assert statuses == {201: 17, 402: 33}, statuses
    wallet = Account.objects.get(kind=AccountKind.WALLET, owner=bob, currency="EUR")
    assert wallet.balance == account_balance(wallet) == 500
    assert Purchase.objects.count() == 17
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0


def test_one_key_sent_twenty_times_at_once_buys_once(
    rita, bob, make_work, fund, device_of, api
) -> None:
    work = make_work(rita, price_minor=1000)
    fund(bob, 50_000)
    _, device = device_of(bob)
    clients = [api(bob) for _ in range(20)]

    def buy(index: int) -> Any:
        return clients[index].post(
            "/api/v1/purchases/", {"work": str(work.pk), "device": device.device_id},
            format="json", HTTP_IDEMPOTENCY_KEY="the-same-key",
        )

    responses = race(20, buy)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] >= 1
    assert Purchase.objects.count() == 1
    created = {r.json()["purchase"]["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1  # every 201 is the same purchase, replayed
    wallet = Account.objects.get(kind=AccountKind.WALLET, owner=bob, currency="EUR")
    assert wallet.balance == 49_000


def test_purchases_from_many_wallets_do_not_deadlock(
    rita, make_work, fund, device_of, api
) -> None:
    from exchange.accounts.models import Role, User

    work = make_work(rita, price_minor=100)
    buyers = [User.objects.create_user(f"b{i}", password="x", role=Role.BUYER) for i in range(10)]
    devices = {}
    for buyer in buyers:
        fund(buyer, 1000)
        devices[buyer.pk] = device_of(buyer)[1]
    clients = [api(buyers[i % 10]) for i in range(40)]

    def buy(index: int) -> int:
        buyer = buyers[index % 10]
        return clients[index].post(
            "/api/v1/purchases/", {"work": str(work.pk), "device": devices[buyer.pk].device_id},
            format="json", HTTP_IDEMPOTENCY_KEY=f"k-{index}",
        ).status_code

    assert Counter(race(40, buy)) == {201: 40}
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0


def test_purchases_refunds_and_settlements_of_one_buyer_at_once_do_not_deadlock(
    rita, bob, make_work, fund, device_of
) -> None:
    """Purchases debit the wallet and credit the escrow; refunds and settlements go the
    other way. Each entry moves its balances in ascending account id whatever the
    direction, so none of them waits on another in a cycle."""
    from exchange.purchases.services import purchase_create, purchase_refund, purchase_settle

    work = make_work(rita, price_minor=100)
    fund(bob, 5000)  # enough for all forty, in whatever order they run
    _, device = device_of(bob)
    held = [purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id).pk
            for _ in range(20)]

    def act(index: int) -> str:
        if index < 20:
            purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
            return "bought"
        if index < 30:
            purchase_refund(purchase_id=held[index - 20], reason="test")
            return "refunded"
        purchase_settle(purchase_id=held[index - 20], peer_bytes={}, settle_minor=60)
        return "settled"

    results = race(40, act)
    assert Counter(results) == {"bought": 20, "refunded": 10, "settled": 10}, results
    wallet = Account.objects.get(kind=AccountKind.WALLET, owner=bob, currency="EUR")
    escrow = Account.objects.get(kind=AccountKind.ESCROW, owner=bob, currency="EUR")
    # 40 purchases of 100 out; 10 refunds of 100 and 10 partial refunds of 40 back
    assert wallet.balance == account_balance(wallet) == 5000 - 4000 + 1000 + 400
    assert escrow.balance == account_balance(escrow) == 100 * 20
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0
