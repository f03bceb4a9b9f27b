"""Payment providers. The platform talks to one through ``PaymentProvider``."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from exchange.payments.providers.base import PaymentProvider


@lru_cache(maxsize=4)
def _provider(name: str) -> PaymentProvider:
    if name == "testpay":
        from exchange.payments.providers.testpay import TestPay

        return TestPay()
    raise ValueError(f"unknown payment provider {name!r}")


def provider_get(name: str | None = None) -> PaymentProvider:
    return _provider(name or settings.PAYMENTS_PROVIDER)
