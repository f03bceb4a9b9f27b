"""The built-in test provider: behaves like a real one, without a real bank.

It confirms asynchronously through webhooks signed in the Standard Webhooks form, after
a configurable delay, and can be told (per payment, through ``scenario``) to decline, to
deliver an event twice, or to deliver events out of order — the things real providers do
that a platform must survive. Delivery is a Celery task: over HTTP to the platform's
webhook URL when workers run, or straight into the webhook handler (signature check
included) in the embedded default, where no second process exists to receive it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings

from exchange.env import secret_in_data_dir
from exchange.payments.signatures import secret_generate

SCENARIOS = {
    "topup": ("succeed", "decline", "duplicate", "out_of_order"),
    "payout": ("succeed", "fail", "duplicate"),
}


def _event(kind: str, reference: str, amount_minor: int, currency: str,
           reason: str = "") -> dict[str, Any]:
    return {
        "id": "evt_" + secrets.token_hex(12),
        "type": kind,
        "data": {"reference": reference, "amount_minor": amount_minor, "currency": currency,
                 "failure_reason": reason},
    }


def _plan(direction: str, scenario: str, reference: str, amount: int,
          currency: str) -> list[dict[str, Any]]:
    if scenario not in SCENARIOS[direction]:
        raise ValueError(f"unknown {direction} scenario {scenario!r}")
    if direction == "topup":
        processing = _event("topup.processing", reference, amount, currency)
        if scenario == "decline":
            return [processing, _event("topup.failed", reference, amount, currency,
                                       "The card was declined.")]
        succeeded = _event("topup.succeeded", reference, amount, currency)
        if scenario == "duplicate":
            return [processing, succeeded, succeeded]
        if scenario == "out_of_order":
            return [succeeded, processing]
        return [processing, succeeded]
    if scenario == "fail":
        return [_event("payout.failed", reference, amount, currency,
                       "The receiving account was closed.")]
    paid = _event("payout.paid", reference, amount, currency)
    return [paid, paid] if scenario == "duplicate" else [paid]


class TestPay:
    __test__ = False  # a provider, not a pytest test class
    name = "testpay"

    def webhook_secret(self) -> str:
        configured: str | None = settings.TESTPAY_WEBHOOK_SECRET
        return configured or secret_in_data_dir(
            settings.DATA_DIR / "testpay_webhook_secret", secret_generate
        )

    def reference_new(self) -> str:
        return "tp_" + secrets.token_hex(12)

    def _send(self, events: list[dict[str, Any]]) -> None:
        from exchange.payments.tasks import testpay_deliver_task

        delay = settings.TESTPAY_DELAY_SECONDS
        for position, event in enumerate(events):
            # Spacing the events keeps their order on a worker; out-of-order scenarios
            # put them in the wrong order on purpose.
            testpay_deliver_task.apply_async(args=[event], countdown=delay + position)

    def topup_start(self, *, reference: str, amount_minor: int, currency: str,
                    scenario: str) -> None:
        self._send(_plan("topup", scenario, reference, amount_minor, currency))

    def payout_start(self, *, reference: str, amount_minor: int, currency: str,
                     scenario: str) -> None:
        self._send(_plan("payout", scenario, reference, amount_minor, currency))
