"""Index credentials: short-lived, signed by the platform, checked here without a database.

The platform and the index are one operator's two services, so an HMAC is enough (no
public key is needed by anyone else) and costs a microsecond where an Ed25519 check costs
tens. A credential names one user's one device; revocation before expiry is the
set of revoked devices, accounts and credentials each process keeps (``gate.py``).

Format: ``pmi1.<base64url(JSON claims)>.<base64url(HMAC-SHA256 of "pmi1.<claims>")>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "pmi1"
MAX_TOKEN_LENGTH = 512
_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JTI = re.compile(r"[0-9a-f]{32}")


class CredentialError(Exception):
    """A credential that must be refused; ``code`` is what the client branches on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Claims:
    user: int
    device: str
    exp: int
    jti: str


def derive_key(secret_key: str) -> bytes:
    """The index key from the platform's secret key, for an operator who sets no key of
    its own (a different purpose string, so neither key reveals the other)."""
    return hmac.new(secret_key.encode(), b"peermark index credential v1", hashlib.sha256).digest()


def parse_key(value: str) -> bytes:
    """A key given as hex (at least 32 bytes): the form PEERMARK_INDEX_SECRET takes."""
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise ValueError("the index secret is hex") from None
    if len(key) < 32:
        raise ValueError("the index secret is at least 32 bytes (64 hex digits)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def mint(key: bytes, *, user: int, device: str, now: int, ttl: int,
         jti: str | None = None) -> str:
    """A credential for ``device`` of ``user``, valid ``ttl`` seconds from ``now``."""
    if not _DEVICE.fullmatch(device):
        raise ValueError("not a device id")
    claims = {"u": int(user), "d": device, "exp": int(now) + int(ttl),
              "j": jti or secrets.token_hex(16)}
    signed = f"{PREFIX}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    return f"{signed}.{_mac(key, signed)}"


def verify(keys: Sequence[bytes], token: str, *, now: int) -> Claims:
    """The claims of a genuine, unexpired credential. ``keys``: the current key first,
    then any earlier one still honoured while credentials signed with it run out."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise CredentialError("unauthenticated", "Not an index credential.")
    prefix, body, mac = token.split(".")
    signed = f"{prefix}.{body}"
    if prefix != PREFIX or not any(hmac.compare_digest(_mac(key, signed), mac) for key in keys):
        raise CredentialError("unauthenticated", "The index credential is not genuine.")
    try:
        raw = json.loads(_unb64(body))
        claims = Claims(user=raw["u"], device=raw["d"], exp=raw["exp"], jti=raw["j"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CredentialError("unauthenticated", "The index credential is malformed.") from None
    if (type(claims.user) is not int or type(claims.exp) is not int
            or not isinstance(claims.device, str) or not _DEVICE.fullmatch(claims.device)
            or not isinstance(claims.jti, str) or not _JTI.fullmatch(claims.jti)):
        raise CredentialError("unauthenticated", "The index credential is malformed.")
    if claims.exp <= now:
        raise CredentialError("credential_expired",
                              "The index credential has expired: ask the platform for a new one.")
    return claims
