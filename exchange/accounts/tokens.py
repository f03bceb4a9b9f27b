"""Making and recognising API bearer tokens."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "pmk_"  # noqa: S105  (a public marker, not a secret)


def token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(raw: str) -> str:
    # A plain hash is enough: tokens are 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
