"""The test provider: which events a payment's scenario produces, and queueing them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from django.conf import settings
from django.utils.translation import gettext_noop

from exchange.env import secret_in_data_dir
from exchange.payments.providers.base import PaymentKind, ProviderEvent, ProviderOption
from exchange.payments.providers.testpay.tasks import testpay_deliver_task
from exchange.payments.signatures import secret_generate

# The labels are English here (the API's schema shows them so); marked, the portal shows them
# in the reader's language.
_HELP = "Test provider only: how the payment should behave."
_LABEL = gettext_noop("Test provider behaviour")
OPTIONS: dict[PaymentKind, ProviderOption] = {
    "topup": ProviderOption(
        name="scenario", label=_LABEL, help_text=_HELP,
        choices=(("succeed", gettext_noop("Pay")),
                 ("decline", gettext_noop("Decline the card")),
                 ("duplicate", gettext_noop("Send the webhook twice")),
                 ("out_of_order", gettext_noop("Send the webhooks out of order"))),
    ),
    "payout": ProviderOption(
        name="scenario", label=_LABEL, help_text=_HELP,
        choices=(("succeed", gettext_noop("Pay out")),
                 ("fail", gettext_noop("Fail: the account is closed")),
                 ("duplicate", gettext_noop("Send the webhook twice"))),
    ),
}


def _event(kind: str, reference: str, amount_minor: int, currency: str,
           reason: str = "") -> ProviderEvent:
    return {
        "id": "evt_" + secrets.token_hex(12),
        "type": kind,
        "data": {"reference": reference, "amount_minor": amount_minor, "currency": currency,
                 "failure_reason": reason},
    }


def _plan(kind: PaymentKind, options: Mapping[str, str], reference: str, amount: int,
          currency: str) -> list[ProviderEvent]:
    option = OPTIONS[kind]
    scenario = options.get(option.name, option.default)
    if scenario not in option.values:
        raise ValueError(f"unknown {kind} scenario {scenario!r}")
    if kind == "topup":
        processing = _event("topup.processing", reference, amount, currency)
        if scenario == "decline":
            return [processing, _event("topup.failed", reference, amount, currency,
                                       gettext_noop("The card was declined."))]
        succeeded = _event("topup.succeeded", reference, amount, currency)
        if scenario == "duplicate":
            return [processing, succeeded, succeeded]
        if scenario == "out_of_order":
            return [succeeded, processing]
        return [processing, succeeded]
    if scenario == "fail":
        return [_event("payout.failed", reference, amount, currency,
                       gettext_noop("The receiving account was closed."))]
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

    def options(self, kind: PaymentKind) -> tuple[ProviderOption, ...]:
        return (OPTIONS[kind],)

    def _send(self, events: list[ProviderEvent]) -> None:
        delay = settings.TESTPAY_DELAY_SECONDS
        for position, event in enumerate(events):
            # Spacing the events keeps their order on a worker; out-of-order scenarios
            # put them in the wrong order on purpose.
            testpay_deliver_task.apply_async(args=[event], countdown=delay + position)

    def topup_start(self, *, reference: str, amount_minor: int, currency: str,
                    options: Mapping[str, str]) -> None:
        self._send(_plan("topup", options, reference, amount_minor, currency))

    def payout_start(self, *, reference: str, amount_minor: int, currency: str,
                     options: Mapping[str, str]) -> None:
        self._send(_plan("payout", options, reference, amount_minor, currency))
