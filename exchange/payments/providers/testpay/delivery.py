"""The test provider's side of the wire: sign one event and deliver it to the platform."""

from __future__ import annotations

import json
import logging
import time

import httpx
from django.conf import settings

from exchange.payments.providers import TEST_PROVIDER, provider_get
from exchange.payments.providers.base import ProviderEvent
from exchange.payments.signatures import sign_headers

log = logging.getLogger(__name__)


class DeliveryFailedError(Exception):
    """The platform answered 5xx: worth delivering again later."""


def testpay_deliver(*, event: ProviderEvent) -> str:
    """Sign and deliver one event; return what the platform answered.

    Raises ``DeliveryFailedError`` on a 5xx and lets ``httpx.TransportError`` through,
    the two a real provider retries. Refuses (``PaymentsUnavailableError``) once the test
    provider is off, so an event queued before that is never delivered."""
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = sign_headers(
        provider_get(TEST_PROVIDER).webhook_secret(), event["id"], int(time.time()), body
    )
    if settings.TESTPAY_DELIVERY == "inprocess":
        from exchange.payments.webhooks import webhook_receive

        return webhook_receive(provider=TEST_PROVIDER, headers=headers, body=body)
    response = httpx.post(
        str(settings.PAYMENTS_WEBHOOK_URL),
        content=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )
    if response.status_code >= 500:
        raise DeliveryFailedError(f"webhook answered {response.status_code}")
    if response.status_code >= 400:
        # The platform refused it on purpose (bad signature, unknown payment): retrying
        # the same bytes cannot help. Real providers would retry; we log and stop.
        log.warning("webhook %s refused: %s %s", event["id"], response.status_code,
                    response.text[:200])
    return f"{response.status_code}"
