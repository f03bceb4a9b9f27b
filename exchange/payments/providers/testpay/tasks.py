"""The test provider's webhook delivery, as a Celery task (registered by
``exchange/celery.py`` when ``PEERMARK_TEST_PAYMENTS`` is on)."""

from __future__ import annotations

import httpx
from celery import shared_task

from exchange.payments.providers.base import ProviderEvent
from exchange.payments.providers.testpay.delivery import DeliveryFailedError, testpay_deliver


@shared_task(
    autoretry_for=(DeliveryFailedError, httpx.TransportError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def testpay_deliver_task(event: ProviderEvent) -> str:
    """Deliver one event. A 5xx or a network error is retried with back-off, as real
    providers do, and a redelivered event carries the same id."""
    return testpay_deliver(event=event)
