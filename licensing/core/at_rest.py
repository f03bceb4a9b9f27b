"""Wrapping secrets at rest under a platform key-encryption key (KEK).

The platform never stores a content key, watermark key or signing key in plain
text: it stores ``wrap_at_rest(kek, secret, aad)``, AES-256-GCM with a random
96-bit nonce. ``aad`` binds the wrapped secret to its record (for example
``b"content-key:" + work id``) so that a wrapped value copied to another row
does not open there.

Format: ``b"\\x01" || nonce (12) || ciphertext || tag (16)``; the version byte
is authenticated too. A random 96-bit nonce is safe for far more wraps than a
KEK will ever do (stay under 2**32 wraps per KEK, NIST SP 800-38D).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import MalformedError, UnwrapFailedError

KEK_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16


def _aead(kek: bytes) -> AESGCM:
    if not isinstance(kek, bytes) or len(kek) != KEK_BYTES:
        raise MalformedError("a key-encryption key is 32 bytes")
    return AESGCM(kek)


def wrap_at_rest(
    kek: bytes, plaintext: bytes, aad: bytes, *, random: Callable[[int], bytes] = os.urandom
) -> bytes:
    """Encrypt ``plaintext`` under ``kek``, bound to ``aad``."""
    nonce = random(_NONCE_BYTES)
    return _VERSION + nonce + _aead(kek).encrypt(nonce, plaintext, _VERSION + aad)


def unwrap_at_rest(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Decrypt what ``wrap_at_rest`` made, or raise ``UnwrapFailedError``."""
    aead = _aead(kek)
    if (
        not isinstance(wrapped, bytes)
        or len(wrapped) < 1 + _NONCE_BYTES + _TAG_BYTES
        or wrapped[:1] != _VERSION
    ):
        raise UnwrapFailedError("not a value wrapped at rest (version 1)")
    nonce, body = wrapped[1 : 1 + _NONCE_BYTES], wrapped[1 + _NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, body, _VERSION + aad)
    except InvalidTag:
        raise UnwrapFailedError("wrong key-encryption key, wrong record, or tampered") from None
