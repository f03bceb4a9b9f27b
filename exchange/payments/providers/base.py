"""What the platform needs from a payment provider.

Both directions are asynchronous, as with real providers: starting a top-up or a payout
only asks; the outcome arrives later as a signed webhook, which is the only thing that
moves money in the ledger.
"""

from __future__ import annotations

from typing import Protocol


class PaymentProvider(Protocol):
    name: str

    def webhook_secret(self) -> str:
        """The ``whsec_`` secret its webhooks are signed with."""
        ...

    def reference_new(self) -> str:
        """A fresh provider-side id for a payment we are about to start."""
        ...

    def topup_start(self, *, reference: str, amount_minor: int, currency: str,
                    scenario: str) -> None:
        """Ask the provider to collect money; it answers with webhooks."""
        ...

    def payout_start(self, *, reference: str, amount_minor: int, currency: str,
                     scenario: str) -> None:
        """Ask the provider to pay money out; it answers with webhooks."""
        ...
