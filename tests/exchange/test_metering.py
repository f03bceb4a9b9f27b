"""Metering: every byte billed from signed orders; escrow released on the receipt."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from exchange.ledger.models import AccountKind, Posting
from exchange.ledger.selectors import account_balance
from exchange.ledger.services import account_get_or_create
from exchange.metering import services, stream
from exchange.metering.models import LicenceUsage, MeteredOrder, Receipt
from exchange.purchases.models import Purchase, PurchaseState
from exchange.purchases.services import purchases_refund_overdue
from licensing.core import DeviceKeys, sign_order, sign_receipt

pytestmark = pytest.mark.django_db

PRICE = 1000


@pytest.fixture
def sale(rita, bob, carol, rob, make_work, fund, device_of, api, settings) -> dict[str, Any]:
    """Bob bought Rita's work (a few pieces); Carol and Rob run serving agents."""
    from tests.conftest import png_bytes

    settings.METERING_GRACE_SECONDS = 0
    work = make_work(rita, data=png_bytes(700, 700, seed=3), price_minor=PRICE)
    fund(bob, 5000)
    keys, device = device_of(bob)
    body = api(bob).post("/api/v1/purchases/", {"work": str(work.pk),
                         "device": device.device_id}, format="json",
                         HTTP_IDEMPOTENCY_KEY="k").json()
    peers = {user.username: device_of(user) for user in (carol, rob)}
    package = work.package
    return {"work": work, "keys": keys, "licence_id": body["licence"]["id"], "peers": peers,
            "package": package, "purchase": Purchase.objects.get()}


def _piece_length(sale: dict[str, Any], index: int) -> int:
    package = sale["package"]
    last = package.piece_count - 1
    if index < last:
        return package.piece_size + 16
    return package.ciphertext_size - last * (package.piece_size + 16)


def _order(sale: dict[str, Any], peer: str, piece: int, *, signer: DeviceKeys | None = None,
           byte_count: int | None = None, issued_at: int | None = None) -> str:
    return sign_order(signer or sale["keys"], licence_id=sale["licence_id"],
                      peer_id=sale["peers"][peer][1].device_id, piece=piece,
                      byte_count=byte_count if byte_count is not None
                      else _piece_length(sale, piece),
                      issued_at=issued_at or int(time.time()))


def _submit(api, user, tokens):
    return api(user).post("/api/v1/metering/orders/", {"orders": tokens}, format="json")


def test_orders_are_recorded_once_each(sale, carol, api) -> None:
    tokens = [_order(sale, "carol", i) for i in range(sale["package"].piece_count)]
    first = _submit(api, carol, [*tokens, tokens[0]])
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["accepted"] == len(tokens)
    assert body["duplicate"] == 1
    again = _submit(api, carol, tokens).json()
    assert again["accepted"] == 0
    assert again["duplicate"] == len(tokens)
    services.metering_flush(min_idle_ms=0)
    assert MeteredOrder.objects.count() == len(tokens)
    usage = LicenceUsage.objects.get()
    assert usage.metered_bytes == sale["package"].ciphertext_size


def test_bytes_beyond_the_allowance_are_not_counted(sale, carol, api) -> None:
    allowance = sale["purchase"].licence.byte_allowance  # twice the size
    count = sale["package"].piece_count
    tokens = [_order(sale, "carol", i % count) for i in range(3 * count)]
    _submit(api, carol, tokens)
    services.metering_flush(min_idle_ms=0)
    usage = LicenceUsage.objects.get()
    assert usage.metered_bytes == allowance
    assert MeteredOrder.objects.count() == 3 * count
    assert sum(MeteredOrder.objects.values_list("counted_bytes", flat=True)) == allowance


def test_an_order_for_a_licence_that_does_not_exist_is_dropped_not_a_stalled_flush(
        sale, carol) -> None:
    """Such an order (from another platform's Redis, say) would make every flush of the
    batch holding it fail, and nothing else would be metered."""
    from exchange.metering.services import orders_record

    _keys, device = sale["peers"]["carol"]
    now = int(time.time())
    known = {"licence": sale["licence_id"], "nonce": "n-known", "device": device.device_id,
             "user": carol.pk, "piece": 0, "bytes": 100, "iat": now}
    ghost = {**known, "licence": "3edd8f10-3b4d-4b67-b8f1-759326d91d5a", "nonce": "n-ghost"}
    assert orders_record([ghost, known]) == {(ghost["licence"], "n-ghost"): False,
                                             (sale["licence_id"], "n-known"): True}
    assert list(MeteredOrder.objects.values_list("nonce", "counted_bytes")) == [("n-known", 100)]
    assert LicenceUsage.objects.get().metered_bytes == 100


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: _order(s, "carol", 0, signer=DeviceKeys.generate()), "wrong_device"),
        (lambda s: _order(s, "carol", 0, byte_count=7), "wrong_byte_count"),
        (lambda s: _order(s, "carol", 10**6), "piece_out_of_range"),
        (lambda s: _order(s, "carol", 0, issued_at=int(time.time()) + 3600), "from_the_future"),
        (lambda s: _order(s, "rob", 0), "not_your_peer"),
        (lambda s: "not.a.token", "malformed"),
        (lambda s: _order(s, "carol", 0)[:-4] + "AAAA", "bad_signature"),
    ],
    ids=["another-device", "byte-count", "out-of-range", "future", "someone-elses-peer",
         "garbage", "tampered"],
)
def test_bad_orders_are_rejected_with_a_reason(sale, carol, api, make, reason) -> None:
    response = _submit(api, carol, [make(sale)])
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert (result["status"], result["reason"]) == ("rejected", reason)
    services.metering_flush(min_idle_ms=0)
    assert not MeteredOrder.objects.exists()


def test_a_batch_must_be_a_list_of_tokens(carol, api) -> None:
    assert api(carol).post("/api/v1/metering/orders/", {"orders": "x"},
                           format="json").status_code == 400
    assert api(carol).post("/api/v1/metering/orders/", {"orders": []},
                           format="json").status_code == 400
    assert api(None).post("/api/v1/metering/orders/", {"orders": ["x"]},
                          format="json").status_code == 401


def _receipt(sale, served: dict[str, int], *, signer: DeviceKeys | None = None) -> str:
    return sign_receipt(signer or sale["keys"], licence_id=sale["licence_id"],
                        output_sha256=b"\x11" * 32, served=served, marked=True,
                        issued_at=int(time.time()))


def test_a_receipt_settles_on_the_bytes_each_peer_served(sale, bob, carol, rob, rita,
                                                          api) -> None:
    count = sale["package"].piece_count
    carol_pieces, rob_pieces = range(count - 1), range(count - 1, count)
    _submit(api, carol, [_order(sale, "carol", i) for i in carol_pieces])
    _submit(api, rob, [_order(sale, "rob", i) for i in rob_pieces])
    carol_bytes = sum(_piece_length(sale, i) for i in carol_pieces)
    rob_bytes = sum(_piece_length(sale, i) for i in rob_pieces)
    served = {sale["peers"]["carol"][1].device_id: carol_bytes,
              sale["peers"]["rob"][1].device_id: rob_bytes}
    response = api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                             {"receipt": _receipt(sale, served)}, format="json")
    assert response.status_code == 201, response.json()
    assert services.receipts_settle_due() == 1

    size = sale["package"].ciphertext_size
    from exchange.money.splits import sale_split

    split = sale_split(PRICE, fee_bps=1000, seeding_bps=1000,
                       peer_bytes={carol.pk: carol_bytes, rob.pk: rob_bytes}, size=size)
    def balance(user, kind):
        return account_balance(account_get_or_create(kind=kind, owner=user, currency="EUR"))
    assert balance(rita, AccountKind.EARNINGS) == split.royalty
    assert balance(carol, AccountKind.SEEDING) == split.peers[carol.pk]
    assert balance(rob, AccountKind.SEEDING) == split.peers[rob.pk]
    assert balance(bob, AccountKind.ESCROW) == 0
    from django.db.models import Sum

    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0
    receipt = Receipt.objects.get()
    assert receipt.settled_at is not None
    assert not receipt.needs_review


def test_a_receipt_that_disagrees_settles_on_verified_orders_and_is_flagged(
    sale, bob, carol, api
) -> None:
    _submit(api, carol, [_order(sale, "carol", 0)])
    inflated = {sale["peers"]["carol"][1].device_id: 10**9}
    api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                  {"receipt": _receipt(sale, inflated)}, format="json")
    services.receipts_settle_due()
    receipt = Receipt.objects.get()
    assert receipt.needs_review
    assert "receipt 1000000000" in receipt.review_reason
    settlement = sale["purchase"].__class__.objects.get().settlement
    assert settlement.peer_bytes == {str(carol.pk): _piece_length(sale, 0)}


def test_the_same_receipt_twice_is_one_receipt(sale, bob, api) -> None:
    token = _receipt(sale, {})
    url = f"/api/v1/licences/{sale['licence_id']}/receipt/"
    assert api(bob).post(url, {"receipt": token}, format="json").status_code == 201
    assert api(bob).post(url, {"receipt": token}, format="json").status_code == 201
    assert api(bob).post(url, {"receipt": _receipt(sale, {})},
                         format="json").status_code == 409
    assert Receipt.objects.count() == 1


def test_a_receipt_is_kept_and_answered_when_its_settlement_cannot_be_queued(
    sale, bob, api, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The broker is down after the receipt committed: the buyer still hears 201 (a
    503 would make the agent sign and send another receipt), and the periodic job
    settles it."""
    from kombu.exceptions import OperationalError as BrokerError

    from exchange.metering import tasks

    def broker_down(*_args: Any, **_kwargs: Any) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(tasks.receipt_settle_task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                                 {"receipt": _receipt(sale, {})}, format="json")
    assert response.status_code == 201
    assert Receipt.objects.get().settled_at is None
    assert services.receipts_settle_due() == 1
    assert Purchase.objects.get().state == PurchaseState.SETTLED


@pytest.mark.parametrize("token", ["garbage", None])
def test_a_forged_or_malformed_receipt_is_refused(sale, bob, api, token) -> None:
    forged = token or _receipt(sale, {}, signer=DeviceKeys.generate())
    response = api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                             {"receipt": forged}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_receipt"
    assert not Receipt.objects.exists()


def test_only_the_buyer_sends_a_receipt(sale, carol, api) -> None:
    response = api(carol).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                               {"receipt": _receipt(sale, {})}, format="json")
    assert response.status_code == 404


def _second_purchase(sale, rita, bob, make_work, api) -> str:
    """Bob buys another of Rita's works with the same device; its licence id."""
    from tests.conftest import png_bytes

    other = make_work(rita, title="Another", data=png_bytes(300, 300, seed=9), price_minor=100)
    device = Purchase.objects.select_related("licence").get().licence.device_id
    body = api(bob).post("/api/v1/purchases/", {"work": str(other.pk), "device": device},
                         format="json", HTTP_IDEMPOTENCY_KEY="k2").json()
    return str(body["licence"]["id"])


def test_a_receipted_purchase_is_not_refunded_and_a_silent_one_is(sale, rita, bob,
                                                                   make_work, api) -> None:
    silent = _second_purchase(sale, rita, bob, make_work, api)
    later = timezone.now() + dt.timedelta(hours=25)
    api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                  {"receipt": _receipt(sale, {})}, format="json")
    assert purchases_refund_overdue(now=later) == 1
    refunded = Purchase.objects.get(state=PurchaseState.REFUNDED)
    assert str(refunded.licence_id) == silent
    assert Purchase.objects.get(licence_id=sale["licence_id"]).state == PurchaseState.HELD


def test_a_receipt_id_reused_for_another_licence_is_a_clear_conflict(sale, rita, bob,
                                                                     make_work, api) -> None:
    other = _second_purchase(sale, rita, bob, make_work, api)
    first = sign_receipt(sale["keys"], licence_id=sale["licence_id"], output_sha256=b"1" * 32,
                         served={}, marked=True, issued_at=int(time.time()),
                         random=lambda n: b"\x07" * n)
    again = sign_receipt(sale["keys"], licence_id=other, output_sha256=b"2" * 32,
                         served={}, marked=True, issued_at=int(time.time()),
                         random=lambda n: b"\x07" * n)
    client = api(bob)
    assert client.post(f"/api/v1/licences/{sale['licence_id']}/receipt/", {"receipt": first},
                       format="json").status_code in (200, 201)
    response = client.post(f"/api/v1/licences/{other}/receipt/", {"receipt": again},
                           format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "receipt_exists"
    assert Receipt.objects.count() == 1


def test_a_receipt_after_the_refund_is_refused(sale, bob, api) -> None:
    later = timezone.now() + dt.timedelta(hours=25)
    assert purchases_refund_overdue(now=later) == 1
    response = api(bob).post(f"/api/v1/licences/{sale['licence_id']}/receipt/",
                             {"receipt": _receipt(sale, {})}, format="json")
    assert response.status_code == 409


@pytest.mark.redis
class TestTheStream:
    """With Redis: ingestion goes through the stream; the flush is exactly once."""

    @pytest.fixture(autouse=True)
    def _clean_stream(self):
        conn = stream.client()
        conn.delete(stream.STREAM, stream.FLUSH_FLAG)
        for key in conn.scan_iter("peermark:metering:seen:*"):
            conn.delete(key)
        yield
        conn.delete(stream.STREAM, stream.FLUSH_FLAG)

    def test_accepted_orders_wait_in_the_stream_until_flushed(self, sale, carol, api,
                                                              settings) -> None:
        assert settings.REDIS_URL
        from exchange.celery import app

        app.conf.CELERY_TASK_ALWAYS_EAGER = False  # keep the flush from running inline
        try:
            _submit(api, carol, [_order(sale, "carol", 0), _order(sale, "carol", 1)])
        finally:
            app.conf.CELERY_TASK_ALWAYS_EAGER = True
        assert stream.backlog(stream.client()) == 2
        assert not MeteredOrder.objects.exists()
        assert services.metering_flush(min_idle_ms=0) == 2
        assert MeteredOrder.objects.count() == 2
        assert stream.backlog(stream.client()) == 0

    def test_a_flush_killed_after_commit_counts_nothing_twice(self, sale, carol, api) -> None:
        from exchange.celery import app

        app.conf.CELERY_TASK_ALWAYS_EAGER = False
        try:
            _submit(api, carol, [_order(sale, "carol", i) for i in range(2)])
        finally:
            app.conf.CELERY_TASK_ALWAYS_EAGER = True

        class KilledError(Exception):
            pass

        def die() -> None:
            raise KilledError

        with pytest.raises(KilledError):
            services.metering_flush(min_idle_ms=0, crash_after_commit=die)
        assert MeteredOrder.objects.count() == 2  # committed, not acknowledged
        services.metering_flush(min_idle_ms=0)  # claims the pending entries again
        assert MeteredOrder.objects.count() == 2
        assert LicenceUsage.objects.get().order_count == 2
        assert stream.backlog(stream.client()) == 0

    def test_a_flush_killed_before_commit_loses_nothing(self, sale, carol, api,
                                                        monkeypatch) -> None:
        from exchange.celery import app

        app.conf.CELERY_TASK_ALWAYS_EAGER = False
        try:
            _submit(api, carol, [_order(sale, "carol", i) for i in range(2)])
        finally:
            app.conf.CELERY_TASK_ALWAYS_EAGER = True
        original = services.orders_record

        def broken(entries):
            list(entries)
            raise ConnectionError("database went away")

        monkeypatch.setattr(services, "orders_record", broken)
        with pytest.raises(ConnectionError):
            services.metering_flush(min_idle_ms=0)
        assert not MeteredOrder.objects.exists()
        monkeypatch.setattr(services, "orders_record", original)
        services.metering_flush(min_idle_ms=0)
        assert MeteredOrder.objects.count() == 2
