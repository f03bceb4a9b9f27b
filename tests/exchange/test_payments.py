"""Top-ups and payouts through the test provider, and its signed webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from exchange.audit.models import AuditEvent
from exchange.core.errors import ServiceError
from exchange.ledger.models import AccountKind, JournalEntry
from exchange.ledger.selectors import account_balance
from exchange.ledger.services import account_get_or_create
from exchange.payments.models import Payout, TopUp, WebhookEvent
from exchange.payments.services import topup_create
from exchange.payments.signatures import sign_headers
from tests.exchange.compute_market.support import compute_earned

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

    def test_an_unknown_scenario_is_refused_before_anything_is_written(self, bob, api) -> None:
        response = _topup(api(bob), scenario="explode")
        assert response.status_code == 400
        assert "scenario" in response.json()["error"]["fields"]
        assert not TopUp.objects.exists()
        with pytest.raises(ServiceError) as refused:
            topup_create(user=bob, amount_minor=100, currency="EUR",
                         options={"scenario": "explode"})
        assert refused.value.field == "scenario"
        with pytest.raises(ServiceError) as unknown:
            topup_create(user=bob, amount_minor=100, currency="EUR", options={"colour": "red"})
        assert unknown.value.field == "colour"
        assert not TopUp.objects.exists()

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

    def test_an_unknown_source_is_refused(self, earner) -> None:
        from exchange.payments.services import payout_request

        with pytest.raises(ServiceError) as refused:
            payout_request(user=earner, source="wallet", amount_minor=2000, currency="EUR")
        assert refused.value.field == "source"
        assert refused.value.message == "Pay out from earnings, seeding or compute."


class TestComputeCreditPayouts:
    """Compute credit is paid out like seeding credit: requested, held aside, then paid
    or returned to the compute credit account."""

    @pytest.fixture
    def contributor(self, rob, bob, carol, fund, device_of, django_capture_on_commit_callbacks):
        compute_earned(rob, [bob, carol], fund, device_of, django_capture_on_commit_callbacks)
        assert _balance(bob, AccountKind.COMPUTE) == 1500
        return bob

    def _payout(self, client, amount=1000, key="c-1", **extra):
        return client.post("/api/v1/payouts/", {"amount_minor": amount, "currency": "EUR",
                           "account": "compute", **extra}, format="json",
                           HTTP_IDEMPOTENCY_KEY=key)

    def test_the_wallet_lists_compute_credit(self, contributor, api) -> None:
        balances = api(contributor).get("/api/v1/wallet/").json()["balances"]
        assert {"kind": "compute", "currency": "EUR", "balance_minor": 1500,
                "display": "€15.00"} in balances

    def test_a_paid_payout_from_compute_credit_leaves_the_system(
            self, contributor, api, django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = self._payout(api(contributor))
        assert response.status_code == 201, response.json()
        assert response.json()["source"] == "compute"
        payout = Payout.objects.get()
        assert (payout.source, payout.state) == ("compute", "paid")
        assert payout.get_source_display() == "Compute credit"
        assert _balance(contributor, AccountKind.COMPUTE) == 500
        assert _balance(contributor, AccountKind.PAYOUT_PENDING) == 0
        assert JournalEntry.objects.filter(kind="payout_paid").count() == 1

    def test_a_failed_payout_returns_the_money_to_compute_credit(
            self, contributor, api, django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            self._payout(api(contributor), scenario="fail")
        assert Payout.objects.get().state == "returned"
        assert _balance(contributor, AccountKind.COMPUTE) == 1500
        assert _balance(contributor, AccountKind.PAYOUT_PENDING) == 0
        assert _balance(contributor, AccountKind.EARNINGS) == 0
        assert _balance(contributor, AccountKind.SEEDING) == 0

    def test_above_the_compute_credit_is_refused(self, contributor, api) -> None:
        response = self._payout(api(contributor), amount=1501)
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "insufficient_funds"
        assert not Payout.objects.exists()
        assert _balance(contributor, AccountKind.COMPUTE) == 1500

    def test_compute_credit_is_not_paid_out_from_another_source(self, contributor,
                                                                api) -> None:
        response = self._payout(api(contributor), account="seeding")
        assert response.status_code == 402
        assert _balance(contributor, AccountKind.COMPUTE) == 1500


def _in_a_fresh_process(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where settings are read from ``env`` alone, as at a real start."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PEERMARK_TEST_PAYMENTS", "PEERMARK_PAYMENTS_PROVIDER", "DATABASE_URL",
                          "REDIS_URL", "CELERY_BROKER_URL")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "PEERMARK_DATA_DIR": str(tmp_path), **env},
        capture_output=True, text=True, timeout=120, check=False,
    )


class TestTheTestProviderSwitch:
    """The test provider moves no real money: it is off unless PEERMARK_TEST_PAYMENTS says
    otherwise, and nothing falls back to it."""

    @pytest.fixture
    def off(self, settings) -> None:
        settings.TEST_PAYMENTS = False

    def test_it_is_off_by_default_and_nothing_falls_back_to_it(self, tmp_path) -> None:
        read = "import exchange.settings as s; print(s.TEST_PAYMENTS, repr(s.PAYMENTS_PROVIDER))"
        assert _in_a_fresh_process(read, tmp_path).stdout.split() == ["False", "''"]
        on = _in_a_fresh_process(read, tmp_path, PEERMARK_TEST_PAYMENTS="true")
        assert on.stdout.split() == ["True", "'testpay'"]

    def test_choosing_it_while_it_is_off_stops_the_start(self, tmp_path) -> None:
        result = _in_a_fresh_process("import exchange.settings", tmp_path,
                                     PEERMARK_PAYMENTS_PROVIDER="testpay")
        assert result.returncode != 0
        assert "PEERMARK_TEST_PAYMENTS=true" in result.stderr
        bad = _in_a_fresh_process("import exchange.settings", tmp_path,
                                  PEERMARK_TEST_PAYMENTS="maybe")
        assert "PEERMARK_TEST_PAYMENTS must be true or false" in bad.stderr

    def test_workers_register_its_delivery_task_only_when_it_is_on(self, tmp_path) -> None:
        tasks = ("from exchange.celery import app; app.loader.import_default_modules(); "
                 "print('\\n'.join(app.tasks))")
        name = "exchange.payments.providers.testpay.tasks.testpay_deliver_task"
        on = _in_a_fresh_process(tasks, tmp_path, PEERMARK_TEST_PAYMENTS="true")
        assert name in on.stdout.split(), on.stderr
        assert "exchange.catalogue.tasks.work_process_task" in on.stdout.split()
        off = _in_a_fresh_process(tasks, tmp_path)
        assert "exchange.catalogue.tasks.work_process_task" in off.stdout.split(), off.stderr
        assert name not in off.stdout.split()

    def test_off_a_top_up_is_refused_and_nothing_is_written(self, off, bob, api) -> None:
        response = _topup(api(bob), scenario="succeed")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "payments_unavailable"
        assert "PEERMARK_TEST_PAYMENTS" in response.json()["error"]["message"]
        assert not TopUp.objects.exists()
        assert not AuditEvent.objects.exists()
        assert _balance(bob) == 0

    def test_off_a_payout_is_refused_and_nothing_moves(self, off, rita, api) -> None:
        response = api(rita).post("/api/v1/payouts/", {"amount_minor": 2000, "currency": "EUR",
                                  "account": "earnings"}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="p-1")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "payments_unavailable"
        assert not Payout.objects.exists()
        assert not JournalEntry.objects.exists()

    def test_off_its_webhooks_are_not_accepted(self, bob, api, client, settings) -> None:
        _topup(api(bob))
        topup = TopUp.objects.get()
        settings.TEST_PAYMENTS = False
        response = _deliver(client, _event(topup))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_provider"
        assert TopUp.objects.get().state == "pending"
        assert not WebhookEvent.objects.exists()
        assert _balance(bob) == 0

    def test_off_an_event_queued_before_is_not_delivered(
        self, bob, api, settings, django_capture_on_commit_callbacks
    ) -> None:
        from exchange.payments.providers import PaymentsUnavailableError

        with django_capture_on_commit_callbacks(execute=False) as queued:
            _topup(api(bob))
        settings.TEST_PAYMENTS = False
        with pytest.raises(PaymentsUnavailableError):
            queued[0]()
        assert TopUp.objects.get().state == "pending"
        assert _balance(bob) == 0

    def test_off_the_api_and_its_schema_offer_no_scenario(self, off, client) -> None:
        from exchange.payments.serializers import PayoutIn, TopUpIn

        assert "scenario" not in TopUpIn().fields
        assert "scenario" not in PayoutIn().fields
        schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content
        assert b"scenario" not in schema.lower()

    def test_on_the_api_offers_its_scenarios(self, client) -> None:
        from exchange.payments.serializers import PayoutIn, TopUpIn

        assert set(TopUpIn().fields["scenario"].choices) == {
            "succeed", "decline", "duplicate", "out_of_order"}
        assert set(PayoutIn().fields["scenario"].choices) == {"succeed", "fail", "duplicate"}
        assert b"TopUpInScenarioEnum" in client.get("/api/v1/schema/").content

    def test_start_up_checks_say_what_is_wrong(self, settings) -> None:
        from exchange.payments.apps import payments_provider_check

        assert payments_provider_check() == []
        settings.PAYMENTS_PROVIDER = ""
        assert [m.id for m in payments_provider_check()] == ["payments.W001"]
        settings.PAYMENTS_PROVIDER = "acmepay"
        assert [m.id for m in payments_provider_check()] == ["payments.E001"]
        settings.PAYMENTS_PROVIDER, settings.TEST_PAYMENTS = "testpay", False
        assert [m.id for m in payments_provider_check()] == ["payments.E001"]
