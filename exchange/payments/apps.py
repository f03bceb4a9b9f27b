from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


def payments_provider_check(**_kwargs: Any) -> list[checks.CheckMessage]:
    """Say at start-up (``manage.py check``, ``migrate``, ``runserver``) what
    ``provider_get`` would refuse later: an unknown provider is an error; none at all
    leaves top-ups and payouts refused, which is worth a warning, not a silent default."""
    from django.conf import settings

    from exchange.payments.providers import PaymentsUnavailableError, provider_get

    if not settings.PAYMENTS_PROVIDER:
        return [checks.Warning(
            "No payment provider is configured: top-ups and payouts answer "
            "503 payments_unavailable.",
            hint="Set PEERMARK_PAYMENTS_PROVIDER, or PEERMARK_TEST_PAYMENTS=true for the "
                 "test provider (demo and tests only: it moves no real money).",
            id="payments.W001",
        )]
    try:
        provider_get()
    except PaymentsUnavailableError as exc:
        return [checks.Error(exc.message, hint="Check PEERMARK_PAYMENTS_PROVIDER.",
                             id="payments.E001")]
    return []


class PaymentsConfig(AppConfig):
    name = "exchange.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        checks.register(payments_provider_check)
