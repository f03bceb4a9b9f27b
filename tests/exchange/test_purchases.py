"""Buying into escrow, settling, refunding — and everything that must not happen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from exchange.audit.models import AuditEvent
from exchange.catalogue.services import work_process
from exchange.ledger.models import Account, AccountKind, JournalEntry, Posting
from exchange.ledger.selectors import account_balance
from exchange.ledger.services import account_get_or_create
from exchange.licensing.models import Licence
from exchange.licensing.services import package_get, package_manifest
from exchange.purchases.models import Purchase
from exchange.purchases.services import (
    PurchaseClosedError,
    purchase_create,
    purchase_refund,
    purchase_settle,
    purchases_refund_overdue,
)
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence
from licensing.core.manifest import read_manifest
from licensing.core.packaging import decrypt_work

pytestmark = pytest.mark.django_db

PRICE = 1250


@pytest.fixture
def sale(rita, bob, make_work, fund, device_of) -> dict[str, Any]:
    """Rita's work at 12.50 EUR; Bob with 50.00 EUR and a registered device."""
    work = make_work(rita, price_minor=PRICE)
    fund(bob, 5000)
    keys, device = device_of(bob)
    return {"work": work, "keys": keys, "device": device}


def _buy(client: Any, sale: dict[str, Any], key: str = "buy-1", **extra: Any) -> Any:
    body = {"work": str(sale["work"].pk), "device": sale["device"].device_id, **extra}
    return client.post("/api/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _wallet(user, currency="EUR") -> int:
    account = account_get_or_create(kind=AccountKind.WALLET, owner=user, currency=currency)
    account.refresh_from_db()
    assert account.balance == account_balance(account)
    return account.balance


def _assert_ledger_sums_to_zero() -> None:
    from django.db.models import Sum

    for currency, total in Posting.objects.values_list("currency").annotate(Sum("amount")):
        assert total == 0, currency
    for entry in JournalEntry.objects.all():
        assert sum(entry.postings.values_list("amount", flat=True)) == 0
    for account in Account.objects.filter(guarded=True):
        assert account.balance == account_balance(account) >= 0


class TestBuying:
    def test_a_purchase_holds_the_price_in_escrow_and_returns_a_licence_and_manifest(
        self, bob, sale, api
    ) -> None:
        response = _buy(api(bob), sale)
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["purchase"]["state"] == "held"
        assert _wallet(bob) == 5000 - PRICE
        purchase = Purchase.objects.get()
        escrow = account_get_or_create(kind=AccountKind.ESCROW, owner=bob, currency="EUR")
        assert account_balance(escrow) == PRICE
        _assert_ledger_sums_to_zero()

        ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
        now = int(time.time())
        licence = read_licence(body["licence"]["token"], keyring=ring, now=now)
        manifest = read_manifest(body["manifest"], keyring=ring, now=now)
        assert licence.licence_id == body["licence"]["id"] == str(purchase.licence_id)
        assert licence.device_id == sale["device"].device_id
        assert licence.work_id == str(sale["work"].pk)
        assert licence.manifest_root == manifest.root
        assert str(licence.watermark_payload) == body["licence"]["watermark_payload"]
        assert licence.byte_allowance == manifest.ciphertext_size * 2
        assert {u.value for u in licence.uses} == {"view", "download"}

    def test_the_buyers_device_alone_recovers_the_master_byte_for_byte(
        self, bob, sale, api, settings, device_of, carol, tmp_path: Path
    ) -> None:
        body = _buy(api(bob), sale).json()
        ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
        licence = read_licence(body["licence"]["token"], keyring=ring, now=int(time.time()))
        manifest = read_manifest(body["manifest"], keyring=ring, now=int(time.time()))
        keys = licence.unwrap_keys(sale["keys"])
        package = sale["work"].package
        out = tmp_path / "copy"
        with out.open("wb") as destination:
            decrypt_work(keys.content_key, manifest,
                         settings.CIPHERTEXT_DIR / package.ciphertext_path, destination)
        master = settings.MASTERS_DIR / sale["work"].master_path
        assert out.read_bytes() == master.read_bytes()

        from licensing.core.errors import LicensingError

        other_keys, _ = device_of(carol)
        with pytest.raises(LicensingError):
            licence.unwrap_keys(other_keys)

    def test_the_same_key_buys_once(self, bob, sale, api) -> None:
        client = api(bob)
        first, again = _buy(client, sale), _buy(client, sale)
        assert first.json() == again.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Purchase.objects.count() == 1
        assert _wallet(bob) == 5000 - PRICE

    def test_each_licence_has_its_own_watermark_payload(self, bob, sale, api) -> None:
        client = api(bob)
        for n in range(3):
            assert _buy(client, sale, key=f"k{n}").status_code == 201
        assert len(set(Licence.objects.values_list("watermark_stored", flat=True))) == 3

    def test_the_buyer_gets_an_invoice(self, bob, carol, sale, api) -> None:
        purchase_id = _buy(api(bob), sale).json()["purchase"]["id"]
        invoice = api(bob).get(f"/api/v1/purchases/{purchase_id}/invoice/").json()
        assert invoice["number"].startswith("PM-")
        assert (invoice["amount_minor"], invoice["currency"]) == (PRICE, "EUR")
        assert api(carol).get(f"/api/v1/purchases/{purchase_id}/invoice/").status_code == 404
        assert api(carol).get(f"/api/v1/purchases/{purchase_id}/").status_code == 404


class TestCost:
    """What a purchase costs the database: a regression here is a slower checkout."""

    def test_a_purchase_is_three_reads_and_eight_writes(
        self, bob, sale, django_assert_num_queries
    ) -> None:
        def buy() -> Purchase:
            return purchase_create(buyer=bob, work_id=sale["work"].pk,
                                   device_id=sale["device"].device_id)

        buy()  # the first also opens the escrow account and reads the package
        # The work with its seller, the device, the wallet and escrow; then two balances,
        # the entry, its postings, the licence, the purchase, the invoice, the audit row.
        # (Outside a test's transaction, BEGIN and COMMIT add two round trips.)
        with django_assert_num_queries(3 + 8):
            purchase = buy()
        assert _wallet(bob) == 5000 - 2 * PRICE
        _assert_ledger_sums_to_zero()
        # Every row of the sale is there, linked as the ORM would link it.
        stored = Purchase.objects.select_related("licence", "invoice").get(pk=purchase.pk)
        assert stored.licence.buyer_id == bob.pk
        assert stored.invoice.amount_minor == PRICE
        entry = JournalEntry.objects.get(kind="purchase", reference=str(purchase.pk))
        assert sorted(entry.postings.values_list("amount", flat=True)) == [-PRICE, PRICE]
        assert AuditEvent.objects.filter(action="purchase.create",
                                         target_id=str(purchase.pk)).count() == 1

    def test_a_works_package_is_read_once_and_its_manifest_only_when_needed(
        self, rita, make_work, django_assert_num_queries
    ) -> None:
        work = make_work(rita, ready=False)
        assert package_get(work.pk) is None  # not packaged yet: and not remembered as such
        work_process(work_id=work.pk)
        package = package_get(work.pk)
        assert package is not None
        with django_assert_num_queries(0):
            assert package_get(work.pk) is package
        with django_assert_num_queries(1):  # the cached copy leaves the manifest out
            manifest = package_manifest(package)
        with django_assert_num_queries(0):
            assert package_manifest(package) is manifest
        assert manifest.root_hex == package.root


class TestRefusals:
    """Each refusal is a clear 4xx and leaves every balance untouched."""

    def _assert_untouched(self, bob, before: int = 5000) -> None:
        assert _wallet(bob) == before
        assert not Purchase.objects.exists()
        assert not Licence.objects.exists()
        assert not JournalEntry.objects.exclude(kind="topup").exists()
        _assert_ledger_sums_to_zero()

    def test_not_enough_money(self, bob, rita, make_work, api, sale) -> None:
        dear = make_work(rita, title="Dear", price_minor=5001)
        response = _buy(api(bob), {**sale, "work": dear})
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "insufficient_funds"
        assert "5000 EUR available, 5001 needed" in response.json()["error"]["message"]
        self._assert_untouched(bob)
        # The refusal (found only when the sale's one statement ran, on PostgreSQL) is
        # stored under the key like any other answer: the same request gets it again.
        again = _buy(api(bob), {**sale, "work": dear})
        assert again.status_code == 402
        assert again["Idempotent-Replayed"] == "true"
        self._assert_untouched(bob)

    def test_a_wallet_in_another_currency(self, bob, rita, make_work, api, sale) -> None:
        yen = make_work(rita, title="Yen", price_minor=500, currency="JPY")
        response = _buy(api(bob), {**sale, "work": yen})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "currency_mismatch"
        assert "JPY" in response.json()["error"]["message"]
        self._assert_untouched(bob)

    def test_an_empty_wallet(self, carol, api, sale, device_of) -> None:
        _, device = device_of(carol)
        response = _buy(api(carol), {**sale, "device": device})
        assert response.status_code == 402
        assert not Purchase.objects.exists()

    def test_ones_own_work(self, rita, api, sale, fund, device_of) -> None:
        fund(rita, 5000)
        _, device = device_of(rita)
        response = _buy(api(rita), {**sale, "device": device})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "own_work"
        assert not Purchase.objects.exists()

    def test_a_withdrawn_work(self, bob, rita, api, sale) -> None:
        from exchange.catalogue.services import work_withdraw

        work_withdraw(work=sale["work"], actor=rita)
        response = _buy(api(bob), sale)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "work_withdrawn"
        self._assert_untouched(bob)

    def test_a_work_not_ready_or_unknown(self, bob, rita, make_work, api, sale) -> None:
        unfinished = make_work(rita, ready=False)
        assert _buy(api(bob), {**sale, "work": unfinished}).status_code == 404
        body = {"work": "00000000-0000-0000-0000-000000000000",
                "device": sale["device"].device_id}
        response = api(bob).post("/api/v1/purchases/", body, format="json",
                                 HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 404
        self._assert_untouched(bob)

    def test_another_users_device(self, bob, carol, api, sale, device_of) -> None:
        _, carols = device_of(carol)
        response = _buy(api(bob), {**sale, "device": carols})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_device"
        self._assert_untouched(bob)

    def test_a_revoked_device(self, bob, api, sale) -> None:
        from exchange.licensing.services import device_revoke

        device_revoke(device=sale["device"], actor=bob)
        response = _buy(api(bob), sale)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "device_revoked"
        self._assert_untouched(bob)

    def test_a_changed_price(self, bob, api, sale) -> None:
        response = _buy(api(bob), sale, expected_price_minor=999)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "price_changed"
        self._assert_untouched(bob)

    @pytest.mark.parametrize(
        "body",
        [{}, {"work": "not-a-uuid", "device": "x"}, {"work": None},
         {"expected_price_minor": 12.5}, {"expected_price_minor": 2**64}],
    )
    def test_malformed_bodies(self, bob, api, sale, body) -> None:
        base = {"work": str(sale["work"].pk), "device": sale["device"].device_id}
        response = api(bob).post("/api/v1/purchases/", {**base, **body} if body else {},
                                 format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"
        self._assert_untouched(bob)

    def test_no_idempotency_key(self, bob, api, sale) -> None:
        response = api(bob).post("/api/v1/purchases/", {"work": str(sale["work"].pk),
                                 "device": sale["device"].device_id}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "idempotency_key_required"
        self._assert_untouched(bob)

    def test_anonymous(self, api, sale, bob) -> None:
        assert _buy(api(None), sale).status_code == 401
        self._assert_untouched(bob)


class TestSettling:
    def test_settlement_pays_royalty_fee_and_seeding_by_bytes(
        self, bob, rita, carol, rob, sale, api
    ) -> None:
        _buy(api(bob), sale)
        purchase = Purchase.objects.get()
        size = sale["work"].package.ciphertext_size
        settlement = purchase_settle(purchase_id=purchase.pk,
                                     peer_bytes={carol.pk: size * 3 // 4, rob.pk: size // 4})
        # 12.50: 10% fee, 10% seeding pool (carol 3/4, rob 1/4), 80% royalty.
        assert (settlement.royalty_minor, settlement.fee_minor) == (1000, 125)
        seeding = {u: account_get_or_create(kind=AccountKind.SEEDING, owner=u,
                                            currency="EUR").balance for u in (carol, rob)}
        assert sum(seeding.values()) == 125
        assert abs(seeding[carol] - 125 * 3 / 4) < 1
        assert abs(seeding[rob] - 125 / 4) < 1
        earnings = account_get_or_create(kind=AccountKind.EARNINGS, owner=rita, currency="EUR")
        assert account_balance(earnings) == 1000
        purchase.refresh_from_db()
        assert purchase.state == "settled"
        escrow = account_get_or_create(kind=AccountKind.ESCROW, owner=bob, currency="EUR")
        assert account_balance(escrow) == 0
        _assert_ledger_sums_to_zero()

    def test_a_partial_settlement_refunds_the_rest(self, bob, carol, sale, api) -> None:
        _buy(api(bob), sale)
        purchase = Purchase.objects.get()
        settlement = purchase_settle(purchase_id=purchase.pk, peer_bytes={carol.pk: 100},
                                     settle_minor=1000)
        assert settlement.refunded_minor == 250
        assert _wallet(bob) == 5000 - 1000
        _assert_ledger_sums_to_zero()

    def test_it_settles_once(self, bob, sale, api) -> None:
        _buy(api(bob), sale)
        purchase = Purchase.objects.get()
        purchase_settle(purchase_id=purchase.pk, peer_bytes={})
        with pytest.raises(PurchaseClosedError):
            purchase_settle(purchase_id=purchase.pk, peer_bytes={})
        with pytest.raises(PurchaseClosedError):
            purchase_refund(purchase_id=purchase.pk, reason="late")
        assert JournalEntry.objects.filter(kind="settlement").count() == 1

    def test_the_buyer_earns_nothing_for_serving_themselves(self, bob, rita, sale, api) -> None:
        _buy(api(bob), sale)
        purchase = Purchase.objects.get()
        settlement = purchase_settle(purchase_id=purchase.pk, peer_bytes={bob.pk: 10**6})
        assert settlement.seeding_minor == 0
        assert settlement.royalty_minor == 1125

    def test_no_receipt_in_the_window_refunds_and_revokes(self, bob, sale, api) -> None:
        import datetime as dt

        from django.utils import timezone

        _buy(api(bob), sale)
        assert purchases_refund_overdue() == 0
        later = timezone.now() + dt.timedelta(hours=25)
        assert purchases_refund_overdue(now=later) == 1
        assert purchases_refund_overdue(now=later) == 0
        purchase = Purchase.objects.select_related("licence").get()
        assert purchase.state == "refunded"
        assert purchase.licence.revoked_at is not None
        assert _wallet(bob) == 5000
        revocations = api(None).get("/api/v1/revocations/").json()
        from licensing.core.revocation import read_revocation_list

        ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
        listed = read_revocation_list(revocations["token"], keyring=ring, now=int(time.time()))
        assert listed.is_licence_revoked(str(purchase.licence_id))
        _assert_ledger_sums_to_zero()


def test_the_fast_response_body_is_what_the_schema_serializer_renders(sale, bob) -> None:
    from exchange.licensing.services import manifest_token
    from exchange.purchases.serializers import PurchaseCreatedOut, purchase_created_body

    purchase = purchase_create(buyer=bob, work_id=sale["work"].pk,
                               device_id=sale["device"].device_id)
    licence = purchase.licence
    manifest = manifest_token(package_get(purchase.work_id))
    described = PurchaseCreatedOut({
        "purchase": purchase,
        "licence": {"id": licence.pk, "token": licence.token,
                    "watermark_payload": str(licence.watermark_payload),
                    "expires_at": licence.expires_at},
        "manifest": manifest,
    }).data
    assert purchase_created_body(purchase, licence, manifest) == described
    purchase.refresh_from_db()
    purchase.closed_at = purchase.created_at
    assert purchase_created_body(purchase, licence, manifest)["purchase"] == PurchaseCreatedOut(
        {"purchase": purchase, "licence": described["licence"], "manifest": manifest},
    ).data["purchase"]
