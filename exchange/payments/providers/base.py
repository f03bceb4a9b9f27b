"""What the platform needs from a payment provider.

Both directions are asynchronous, as with real providers: starting a top-up or a payout
only asks; the outcome arrives later as a signed webhook, which is the only thing that
moves money in the ledger.

A provider starts a payment from what every provider understands: our reference, the
amount and the currency. Anything particular to one provider (the test provider's
``scenario``: decline the card, deliver a webhook twice) is an *option* the provider
declares for itself with ``options()``: a name and the values a payer may choose from.
The API and the portal offer whatever the configured provider declares, and the
services check given values against the same declarations before anything is written
(``options_clean`` in ``exchange.payments.providers``). So no public module names a
provider or its options, a provider that declares none (any real one) is offered none,
and the OpenAPI schema describes the options of the provider actually configured.
Options are chosen from a list rather than free text because a person picks them in a
form; that is all the test provider needs, and all a real one should expose to payers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

PaymentKind = Literal["topup", "payout"]


@dataclass(frozen=True)
class ProviderOption:
    """One choice a payer may make about a payment, particular to the provider."""

    name: str
    label: str
    # (value, label) pairs; the first is the default.
    choices: tuple[tuple[str, str], ...]
    help_text: str = ""

    @property
    def default(self) -> str:
        return self.choices[0][0]

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)


class ProviderEventData(TypedDict):
    """What a provider's event says about one payment (docs/MONEY.md, webhooks)."""

    reference: str
    amount_minor: int
    currency: str
    failure_reason: str


class ProviderEvent(TypedDict):
    """One webhook event as a provider sends it: its id, its type, the payment."""

    id: str
    type: str
    data: ProviderEventData


class PaymentProvider(Protocol):
    name: str

    def webhook_secret(self) -> str:
        """The ``whsec_`` secret its webhooks are signed with."""
        ...

    def reference_new(self) -> str:
        """A fresh provider-side id for a payment we are about to start."""
        ...

    def options(self, kind: PaymentKind) -> tuple[ProviderOption, ...]:
        """The options a payer may give a payment of this kind; none for most providers."""
        ...

    def topup_start(self, *, reference: str, amount_minor: int, currency: str,
                    options: Mapping[str, str]) -> None:
        """Ask the provider to collect money; it answers with webhooks. ``options`` holds
        a value for each option ``options("topup")`` declares, already checked."""
        ...

    def payout_start(self, *, reference: str, amount_minor: int, currency: str,
                     options: Mapping[str, str]) -> None:
        """Ask the provider to pay money out; it answers with webhooks. ``options`` as
        for ``topup_start``. Idempotent per ``reference``: an admin may ask again for a
        payout left unanswered (``exchange/payments/retry.py``), and the provider must
        pay it once (a real provider is given the reference as its idempotency key)."""
        ...
