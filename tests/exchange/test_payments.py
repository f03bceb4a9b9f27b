"""Top-ups and payouts through the test provider, and its signed webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.conf import settings as django_settings

from exchange.ledger.models import AccountKind, JournalEntry
from exchange.ledger.selectors import account_balance
from exchange.ledger.services import account_get_or_create
from exchange.payments.models import Payout, TopUp, WebhookEvent
from exchange.payments.signatures import sign_headers

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/payments/webhooks/testpay/"


def _topup(client: Any, amount: Any = 5000, currency: str = "EUR", key: str = "t-1",
           **extra: Any) -> Any:
    return client.post("/api/v1/wallet/topups/", {"amount_minor": amount, "currency": currency,
                       **extra}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _balance(user, kind=AccountKind.WALLET, currency="EUR") -> int:
    account = account_get_or_create(kind=kind, owner=user, currency=currency)
    account.refresh_from_db()
    assert account.balance == account_balance(account)
    return account.balance


def _deliver(client: Any, event: dict[str, Any], *, secret: str | None = None,
             timestamp: int | None = None, body: bytes | None = None) -> Any:
    raw = body if body is not None else json.dumps(event).encode()
    headers = sign_headers(secret or django_settings.TESTPAY_WEBHOOK_SECRET, event["id"],
                           int(time.time()) if timestamp is None else timestamp, raw)
    return client.generic("POST", WEBHOOK, raw, content_type="application/json",
                          **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})


def _event(topup: TopUp, kind: str = "topup.succeeded", event_id: str = "evt_1",
           **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "data": {
        "reference": topup.provider_ref, "amount_minor": topup.amount_minor,
        "currency": topup.currency, **data}}


class TestTopUps:
    def test_a_top_up_credits_the_wallet_only_on_the_success_webhook(
        self, bob, api, django_capture_on_commit_callbacks
    ) -> None:
        client = api(bob)
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = _topup(client)
        assert response.status_code == 201, response.json()
        assert response.json()["state"] == "pending"
        assert _balance(bob) == 0  # asked, not paid
        for callback in queued:
            callback()  # the provider delivers its webhooks
        assert TopUp.objects.get().state == "succeeded"
        assert _balance(bob) == 5000
        assert client.get("/api/v1/wallet/").json()["balances"] == [
            {"kind": "wallet", "currency": "EUR", "balance_minor": 5000, "display": "€50.00"}
        ]

    def test_a_declined_top_up_credits_nothing(self, bob, api,
                                               django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            _topup(api(bob), scenario="decline")
        topup = TopUp.objects.get()
        assert topup.state == "failed"
        assert "declined" in topup.failure_reason
        assert _balance(bob) == 0

    def test_a_duplicated_webhook_credits_once(self, bob, api,
                                               django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            _topup(api(bob), scenario="duplicate")
        assert _balance(bob) == 5000
        assert WebhookEvent.objects.filter(event_type="topup.succeeded").count() == 1

    def test_events_out_of_order_do_not_undo_a_success(self, bob, api,
                                                       django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            _topup(api(bob), scenario="out_of_order")
        assert TopUp.objects.get().state == "succeeded"
        assert _balance(bob) == 5000

    def test_a_late_failure_after_success_changes_nothing(self, bob, api, client) -> None:
        _topup(api(bob))
        topup = TopUp.objects.get()
        assert _deliver(client, _event(topup)).status_code == 200
        late = _deliver(client, _event(topup, "topup.failed", "evt_2"))
        assert late.status_code == 200
        assert "ignored" in late.json()["outcome"]
        assert _balance(bob) == 5000

    def test_the_same_key_twice_starts_one_top_up(self, bob, api) -> None:
        client = api(bob)
        assert _topup(client).status_code == 201
        assert _topup(client).status_code == 201
        assert TopUp.objects.count() == 1

    @pytest.mark.parametrize(
        ("amount", "currency", "field"),
        [(0, "EUR", "amount_minor"), (-5, "EUR", "amount_minor"), (12.5, "EUR", "amount_minor"),
         ("12.50", "EUR", "amount_minor"), (2**64, "EUR", "amount_minor"),
         (10**9, "EUR", "amount_minor"), (True, "EUR", "amount_minor"),
         (100, "XYZ", "currency"), (100, "eur", "currency")],
    )
    def test_it_refuses_bad_amounts(self, bob, api, amount, currency, field) -> None:
        response = _topup(api(bob), amount, currency)
        assert response.status_code == 400, response.json()
        assert field in response.json()["error"]["fields"]
        assert not TopUp.objects.exists()

    def test_it_needs_an_idempotency_key(self, bob, api) -> None:
        response = api(bob).post("/api/v1/wallet/topups/",
                                 {"amount_minor": 100, "currency": "EUR"}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "idempotency_key_required"

    def test_another_users_top_up_is_not_found(self, bob, carol, api) -> None:
        _topup(api(bob))
        topup = TopUp.objects.get()
        assert api(carol).get(f"/api/v1/wallet/topups/{topup.pk}/").status_code == 404
        assert api(bob).get(f"/api/v1/wallet/topups/{topup.pk}/").status_code == 200


class TestWebhooks:
    @pytest.fixture
    def topup(self, bob, api) -> TopUp:
        _topup(api(bob))
        return TopUp.objects.get()

    def _assert_untouched(self, bob) -> None:
        assert _balance(bob) == 0
        assert not JournalEntry.objects.exists()
        assert not WebhookEvent.objects.exists()

    def test_a_bad_signature_is_refused(self, bob, client, topup) -> None:
        response = _deliver(client, _event(topup),
                            secret="whsec_" + "b3RoZXItc2VjcmV0LTAxMjM0NTY3ODkwMTIzNDU2Nzg=")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_signature"
        self._assert_untouched(bob)

    def test_a_tampered_body_is_refused(self, bob, client, topup) -> None:
        event = _event(topup)
        signed = json.dumps(event).encode()
        headers = sign_headers(django_settings.TESTPAY_WEBHOOK_SECRET, "evt_1",
                               int(time.time()), signed)
        event["data"]["amount_minor"] = 10**6
        response = client.generic(
            "POST", WEBHOOK, json.dumps(event).encode(), content_type="application/json",
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        assert response.status_code == 401
        self._assert_untouched(bob)

    @pytest.mark.parametrize("age", [310, -310, 86400])
    def test_a_stale_timestamp_is_refused(self, bob, client, topup, age) -> None:
        response = _deliver(client, _event(topup), timestamp=int(time.time()) - age)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "stale_timestamp"
        self._assert_untouched(bob)

    def test_missing_headers_are_refused(self, bob, client, topup) -> None:
        response = client.post(WEBHOOK, _event(topup), content_type="application/json")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_signature"
        self._assert_untouched(bob)

    def test_an_unknown_event_type_is_refused(self, bob, client, topup) -> None:
        response = _deliver(client, _event(topup, "topup.refunded_twice"))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_event"
        self._assert_untouched(bob)

    def test_an_unknown_payment_is_refused(self, bob, client, topup) -> None:
        event = _event(topup)
        event["data"]["reference"] = "tp_nobody"
        response = _deliver(client, event)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_reference"
        self._assert_untouched(bob)

    def test_an_amount_that_disagrees_is_refused(self, bob, client, topup) -> None:
        response = _deliver(client, _event(topup, amount_minor=10**6))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "event_mismatch"
        self._assert_untouched(bob)

    @pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "topup.succeeded"}',
                                      b'{"type": 1, "data": {}}'])
    def test_a_malformed_body_is_refused(self, bob, client, topup, body) -> None:
        response = _deliver(client, {"id": "evt_x"}, body=body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_webhook"
        self._assert_untouched(bob)

    def test_a_replayed_delivery_has_no_effect(self, bob, client, topup) -> None:
        first = _deliver(client, _event(topup))
        again = _deliver(client, _event(topup))
        assert first.json()["outcome"] == "credited"
        assert again.status_code == 200
        assert again.json()["outcome"].startswith("duplicate")
        assert _balance(bob) == 5000


class TestPayouts:
    @pytest.fixture
    def earner(self, rita):
        """Rita with 50.00 EUR of royalties (posted as a settlement would)."""
        from django.db import transaction

        from exchange.ledger.services import Leg, ledger_post, platform_account

        earnings = account_get_or_create(kind=AccountKind.EARNINGS, owner=rita, currency="EUR")
        fees = platform_account(kind=AccountKind.FEES, currency="EUR")
        with transaction.atomic():
            ledger_post(kind="settlement", reference="fixture", memo="",
                        legs=[Leg(fees, -5000), Leg(earnings, 5000)])
        return rita

    def _payout(self, client, amount=2000, source="earnings", key="p-1", **extra):
        return client.post("/api/v1/payouts/", {"amount_minor": amount, "currency": "EUR",
                           "account": source, **extra}, format="json", HTTP_IDEMPOTENCY_KEY=key)

    def test_a_paid_payout_leaves_the_system(self, earner, api,
                                             django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = self._payout(api(earner))
        assert response.status_code == 201, response.json()
        assert Payout.objects.get().state == "paid"
        assert _balance(earner, AccountKind.EARNINGS) == 3000
        assert _balance(earner, AccountKind.PAYOUT_PENDING) == 0

    def test_a_failed_payout_returns_the_money(self, earner, api,
                                               django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            self._payout(api(earner), scenario="fail")
        assert Payout.objects.get().state == "returned"
        assert _balance(earner, AccountKind.EARNINGS) == 5000
        assert _balance(earner, AccountKind.PAYOUT_PENDING) == 0

    def test_a_pending_payout_holds_the_money_aside(self, earner, api,
                                                    django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=False):
            self._payout(api(earner))
        assert _balance(earner, AccountKind.EARNINGS) == 3000
        assert _balance(earner, AccountKind.PAYOUT_PENDING) == 2000

    def test_a_duplicated_paid_webhook_pays_once(self, earner, api,
                                                 django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            self._payout(api(earner), scenario="duplicate")
        assert _balance(earner, AccountKind.EARNINGS) == 3000
        assert JournalEntry.objects.filter(kind="payout_paid").count() == 1

    def test_below_the_threshold_is_refused(self, earner, api) -> None:
        response = self._payout(api(earner), amount=999)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "below_threshold"
        assert not Payout.objects.exists()
        assert _balance(earner, AccountKind.EARNINGS) == 5000

    def test_above_the_balance_is_refused(self, earner, api) -> None:
        response = self._payout(api(earner), amount=5001)
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "insufficient_funds"
        assert not Payout.objects.exists()
        assert _balance(earner, AccountKind.EARNINGS) == 5000

    def test_a_source_with_no_money_is_refused(self, earner, api) -> None:
        response = self._payout(api(earner), source="seeding")
        assert response.status_code == 402
        assert not Payout.objects.exists()
