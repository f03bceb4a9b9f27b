"""A sealed licence's personal decryption table, encrypted for its one licence.

Sealed delivery (docs/SEALED.md) gives every buyer of a work the same sealed container
and each licence its own table: applying the table to the container yields the copy
marked for that licence. The table is derived from the work's watermark key, which must
never reach a device (it derives every other licence's table too), so the licence wraps
a *table key* in its place, and the platform serves the table encrypted under it:

    table key = HMAC-SHA256(watermark key, "peermark-table-key-v1" || licence id)
    blob      = AES-256-GCM(table key, nonce = 12 zero bytes, table,
                            associated data = "peermark-table-v1" || licence id)

A fixed nonce is sound here: each table key is unique to one licence and encrypts one
plaintext only (the licence's table, itself a deterministic function of the work's key
and the licence's payload), so a key and nonce pair never meets two plaintexts. The
blob is therefore deterministic: the platform recomputes it whenever it is asked and
stores nothing per licence, and the licence's ``seal`` claim binds its SHA-256 and size.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .encoding import check_identifier
from .errors import BadTableError, MalformedError, OversizedError

KEY_BYTES = 32
TAG_BYTES = 16
#: the largest encrypted table a licence may name or an agent accepts (a table is
#: ``2 * table_size + 16`` bytes; 64 MiB is far above any table the image seal makes)
MAX_TABLE_BYTES = 64 << 20
_KEY_LABEL = b"peermark-table-key-v1"
_AAD_LABEL = b"peermark-table-v1"
_NONCE = bytes(12)


def _licence_bytes(licence_id: str) -> bytes:
    return check_identifier(licence_id, what="licence id").encode("ascii")


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise MalformedError(f"{what} is {KEY_BYTES} bytes")


def table_key_for(watermark_key: bytes, licence_id: str) -> bytes:
    """The licence's table key, derived from the work's watermark key.

    One-way: a device holding its table key learns nothing of the watermark key, and
    each licence's key differs, so one buyer's key opens no other buyer's table.
    """
    _check_key(watermark_key, "a watermark key")
    return hmac.new(watermark_key, _KEY_LABEL + _licence_bytes(licence_id),
                    hashlib.sha256).digest()


def seal_table(table_key: bytes, licence_id: str, table: bytes) -> bytes:
    """Encrypt a licence's plain table under its table key (deterministic; see above)."""
    _check_key(table_key, "a table key")
    if not isinstance(table, bytes) or not table:
        raise MalformedError("a table is non-empty bytes")
    if len(table) + TAG_BYTES > MAX_TABLE_BYTES:
        raise OversizedError(f"a table is at most {MAX_TABLE_BYTES - TAG_BYTES} bytes")
    return AESGCM(table_key).encrypt(_NONCE, table, _AAD_LABEL + _licence_bytes(licence_id))


def table_sha256(blob: bytes) -> bytes:
    """The digest a licence's ``seal`` claim names."""
    return hashlib.sha256(blob).digest()


def open_table(table_key: bytes, licence_id: str, blob: bytes, expected_sha256: bytes) -> bytes:
    """Check an encrypted table against its licence's claim, then decrypt it.

    The hash is checked first, so a blob the platform (or anyone on the way) did not
    bind to this licence is refused before any decryption: ``BadTableError`` for a
    wrong hash, a wrong key or another licence's table; ``OversizedError`` for a blob
    above ``MAX_TABLE_BYTES``.
    """
    _check_key(table_key, "a table key")
    if not isinstance(blob, bytes):
        raise MalformedError("an encrypted table is bytes")
    if len(blob) > MAX_TABLE_BYTES:
        raise OversizedError(f"an encrypted table is at most {MAX_TABLE_BYTES} bytes")
    if len(blob) <= TAG_BYTES:
        raise BadTableError("the encrypted table is too short")
    if not hmac.compare_digest(table_sha256(blob), expected_sha256):
        raise BadTableError("the table is not the one the licence names (SHA-256 differs)")
    try:
        return AESGCM(table_key).decrypt(_NONCE, blob, _AAD_LABEL + _licence_bytes(licence_id))
    except InvalidTag:
        raise BadTableError("the table does not open with this licence's table key") from None
