"""Receiving provider webhooks: verify, de-duplicate by event id, apply, all or nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from exchange.core.errors import ServiceError
from exchange.payments.models import WebhookEvent
from exchange.payments.providers import PaymentsUnavailableError, provider_get
from exchange.payments.services import payout_apply, topup_apply
from exchange.payments.signatures import WebhookSignatureError, verify

MAX_BODY_BYTES = 64 * 1024
_HANDLERS = {
    "topup.processing": topup_apply,
    "topup.succeeded": topup_apply,
    "topup.failed": topup_apply,
    "payout.paid": payout_apply,
    "payout.failed": payout_apply,
}


class WebhookError(ServiceError):
    code = "invalid_webhook"


def _parse(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("The webhook body is not JSON.", code="malformed_webhook") from None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not isinstance(event.get("type"), str):
        raise WebhookError("The webhook has no type or data.", code="malformed_webhook")
    if not isinstance(data.get("reference"), str):
        raise WebhookError("The webhook names no payment.", code="malformed_webhook")
    return dict(event)


def webhook_receive(*, provider: str, headers: Mapping[str, str], body: bytes,
                    now: int | None = None) -> str:
    """Handle one delivery; return what it did. Raises ``WebhookError`` (a 4xx) when the
    delivery is refused, in which case nothing at all was written."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError("The webhook body is too large.", code="malformed_webhook",
                           status_code=413)
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        source = provider_get(provider)
    except PaymentsUnavailableError:  # unknown, or the test provider while it is off
        raise WebhookError(f"Unknown provider {provider!r}.", code="unknown_provider",
                           status_code=404) from None
    try:
        event_id = verify(source.webhook_secret(), lowered, body,
                          now=int(time.time()) if now is None else now)
    except WebhookSignatureError as exc:
        raise WebhookError(exc.message, code=exc.code, status_code=401) from exc
    event = _parse(body)
    handler = _HANDLERS.get(event["type"])
    if handler is None:
        raise WebhookError(f"Unknown event type {event['type']!r}.", code="unknown_event")
    data = event["data"]
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = WebhookEvent.objects.create(
                    provider=provider, event_id=event_id, event_type=event["type"],
                    payload=event,
                )
        except IntegrityError:
            return "duplicate: already handled"
        outcome = handler(
            event_type=event["type"], reference=data["reference"],
            amount_minor=data.get("amount_minor"), currency=data.get("currency"),
            reason=str(data.get("failure_reason") or "")[:200],
        )
        record.outcome = outcome
        record.save(update_fields=["outcome"])
    return outcome
