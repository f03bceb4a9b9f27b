"""Payment providers. The platform talks to one through ``PaymentProvider``.

This registry is the one module that imports a provider. The built-in test provider
(``testpay/``) moves no real money, so it is available only when
``PEERMARK_TEST_PAYMENTS`` is on (``settings.TEST_PAYMENTS``); settings refuse to start
with it chosen otherwise, and ``provider_get`` refuses it as well, so neither a payment
nor a webhook can reach it when it is off.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings
from django.utils.translation import gettext as _

from exchange.core.errors import ServiceError
from exchange.payments.providers.base import PaymentKind, PaymentProvider, ProviderOption

TEST_PROVIDER = "testpay"


class PaymentsUnavailableError(ServiceError):
    """No usable payment provider: none configured, an unknown one, or the test provider
    while it is off. The platform's configuration, not the request, is at fault."""

    code = "payments_unavailable"
    status_code = 503


@lru_cache(maxsize=4)
def _provider(name: str) -> PaymentProvider:
    if name == TEST_PROVIDER:
        from exchange.payments.providers.testpay.provider import TestPay

        return TestPay()
    raise PaymentsUnavailableError(f"Unknown payment provider {name!r}.")


def provider_get(name: str | None = None) -> PaymentProvider:
    """The provider called ``name``, or the configured one (``PEERMARK_PAYMENTS_PROVIDER``).

    Raises ``PaymentsUnavailableError`` when there is none, the name is unknown, or it is
    the test provider and ``PEERMARK_TEST_PAYMENTS`` is off."""
    chosen = settings.PAYMENTS_PROVIDER if name is None else name
    if not chosen:
        raise PaymentsUnavailableError(
            "Payments are not available: no payment provider is configured.")
    if chosen == TEST_PROVIDER and not settings.TEST_PAYMENTS:
        raise PaymentsUnavailableError(
            "Payments are not available: the test payment provider is off "
            "(PEERMARK_TEST_PAYMENTS).")
    return _provider(chosen)


def provider_options(kind: PaymentKind) -> tuple[ProviderOption, ...]:
    """The options the configured provider offers for a payment of ``kind``; none when no
    provider is usable (starting the payment then says why)."""
    try:
        provider = provider_get()
    except PaymentsUnavailableError:
        return ()
    return provider.options(kind)


def options_clean(provider: PaymentProvider, kind: PaymentKind,
                  given: Mapping[str, str]) -> dict[str, str]:
    """``given`` checked against what ``provider`` declares, with defaults filled in.

    Raises ``ServiceError`` naming the option for an unknown option or value."""
    declared = {option.name: option for option in provider.options(kind)}
    for name in given:
        if name not in declared:
            raise ServiceError(_("The payment provider has no option %(name)r.") % {"name": name},
                               code="invalid", field=name)
    cleaned: dict[str, str] = {}
    for name, option in declared.items():
        value = given.get(name, option.default)
        if value not in option.values:
            raise ServiceError(
                _("%(option)s: choose one of %(values)s.")
                % {"option": _(option.label), "values": ", ".join(option.values)},
                code="invalid", field=name,
            )
        cleaned[name] = value
    return cleaned
