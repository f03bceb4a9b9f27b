"""Webhook delivery for the test provider (the provider's side of the wire)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
from celery import shared_task
from django.conf import settings

from exchange.payments.providers import provider_get
from exchange.payments.signatures import sign_headers

log = logging.getLogger(__name__)


class DeliveryFailedError(Exception):
    pass


@shared_task(
    autoretry_for=(DeliveryFailedError, httpx.TransportError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def testpay_deliver_task(event: dict[str, Any]) -> str:
    """Sign and deliver one event. A 5xx or a network error is retried with back-off, as
    real providers do, and a redelivered event carries the same id."""
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = sign_headers(
        provider_get("testpay").webhook_secret(), event["id"], int(time.time()), body
    )
    if settings.TESTPAY_DELIVERY == "inprocess":
        from exchange.payments.webhooks import webhook_receive

        return webhook_receive(provider="testpay", headers=headers, body=body)
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
