"""The per-copy identifier a document carries in its structure: the payload, keyed.

A token names the payload only to the holder of the work's key: the 64-bit payload is
XORed with a keyed pad and followed by a 48-bit keyed check (truncated HMAC-SHA256), so
a token from another work, an edited token or a made-up one reads as no mark (a chance
of 2**-48 per token read), and two buyers' tokens of one work share nothing a reader
could use to forge a third. It is the cheapest evidence and the easiest to strip
(rewriting the metadata removes it), which is why the text and image marks exist too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from watermark.payload import PAYLOAD_BITS, validate_key, validate_payload

PREFIX: Final = "urn:peermark:copy:"
_PAD_LABEL: Final = b"peermark.document.v1.identifier-pad"
_CHECK_LABEL: Final = b"peermark.document.v1.identifier-check"
_PAYLOAD_BYTES: Final = PAYLOAD_BITS // 8
_CHECK_BYTES: Final = 6


def _pad(key: bytes) -> bytes:
    return hmac.new(key, _PAD_LABEL, hashlib.sha256).digest()[:_PAYLOAD_BYTES]


def _check(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CHECK_LABEL + payload, hashlib.sha256).digest()[:_CHECK_BYTES]


def copy_identifier(key: bytes, payload: int) -> str:
    """The token for this copy: ``urn:peermark:copy:`` and 23 base32 letters."""
    raw_key = validate_key(key)
    value = validate_payload(payload).to_bytes(_PAYLOAD_BYTES, "big")
    masked = bytes(a ^ b for a, b in zip(value, _pad(raw_key), strict=True))
    token = base64.b32encode(masked + _check(raw_key, value)).decode("ascii").rstrip("=")
    return PREFIX + token.lower()


def read_identifier(text: str, key: bytes) -> int | None:
    """The payload a token names under ``key``, or None (not a token, or not this key's)."""
    raw_key = validate_key(key)
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text.lower().startswith(PREFIX) or len(text) > len(PREFIX) + 64:
        return None
    token = text[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _PAYLOAD_BYTES + _CHECK_BYTES:
        return None
    masked, check = raw[:_PAYLOAD_BYTES], raw[_PAYLOAD_BYTES:]
    value = bytes(a ^ b for a, b in zip(masked, _pad(raw_key), strict=True))
    if not hmac.compare_digest(check, _check(raw_key, value)):
        return None
    return int.from_bytes(value, "big")


def find_identifiers(text: str) -> list[str]:
    """Every token-shaped string in ``text`` (metadata, XMP, an OPF file), in order."""
    found = []
    lowered = text.lower()
    start = lowered.find(PREFIX)
    while start >= 0:
        end = start + len(PREFIX)
        while end < len(text) and text[end].isalnum() and end - start < len(PREFIX) + 64:
            end += 1
        found.append(text[start:end])
        start = lowered.find(PREFIX, end)
    return found
