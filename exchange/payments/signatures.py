"""Webhook signatures in the Standard Webhooks form (standardwebhooks.com).

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256>`` values, so a sender can rotate secrets) over
``{id}.{timestamp}.{body}``, with a secret written ``whsec_<base64>``. A timestamp more
than five minutes away from now is refused, which bounds how long a captured request
could be replayed; the event-id table bounds it the rest of the way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

TOLERANCE_SECONDS = 5 * 60
_PREFIX = "whsec_"


class WebhookSignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def secret_generate() -> str:
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        return base64.b64decode(secret[len(_PREFIX):], validate=True)
    except binascii.Error as exc:
        raise ValueError("the webhook secret is not valid base64") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> str:
    """Check a delivery; return its message id. ``headers`` keys are lower-case."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not given:
        raise WebhookSignatureError(
            "missing_signature", "webhook-id, webhook-timestamp and webhook-signature are required."
        )
    if len(msg_id) > 128 or len(given) > 2048:
        raise WebhookSignatureError("malformed_signature", "Webhook headers are too long.")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureError(
            "malformed_signature", "webhook-timestamp is not a number."
        ) from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise WebhookSignatureError(
            "stale_timestamp", "The webhook timestamp is more than five minutes from now."
        )
    expected = signature(secret, msg_id, timestamp, body)
    for candidate in given.split():
        if hmac.compare_digest(candidate.encode(), expected.encode()):
            return msg_id
    raise WebhookSignatureError("bad_signature", "The webhook signature does not match.")
