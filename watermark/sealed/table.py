"""A licence's personal decryption table: the negated noise plus that licence's mark.

Entry t is D[t] = -E[t] + W[t], where E is the work's noise table and
W[t] = chip[t] x (+1 if the licence's codeword has bit[t] set, else -1). Applied to the
sealed coefficients, the noise cancels exactly and the mark stays: the holder gets a marked
copy without ever holding the unmarked one. A table names one licence: two tables differ
only where the two codewords differ, which is the Tardos marking assumption.

On the wire: ``PMTABLE1``, the entry count (4 bytes, big-endian), then the entries as
16-bit little-endian integers. The platform encrypts it per licence (see
licensing.core.sealed_tables); this module only builds and reads the plain table.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.payload import validate_key, validate_payload
from watermark.sealed import keyed, tardos
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.params import CODE_BITS, MAX_COALITION, MAX_TABLE_ENTRIES, MIN_TABLE_ENTRIES

MAGIC: Final = b"PMTABLE1"
_HEADER: Final = len(MAGIC) + 4


def mark_entries(key: bytes, payload: int, size: int) -> NDArray[np.int32]:
    """W: the licence's mark, one +-1 per table entry."""
    chips, bits = keyed.entry_layout(key, size, CODE_BITS)
    word = tardos.codeword(key, payload, keyed.biases(key, CODE_BITS, MAX_COALITION))
    return np.asarray(chips.astype(np.int32) * np.where(word[bits], 1, -1), np.int32)


def check_table_size(size: object) -> int:
    if type(size) is not int or not MIN_TABLE_ENTRIES <= size <= MAX_TABLE_ENTRIES \
            or size & (size - 1):
        raise SealedFormatError(
            f"a table has a power of two of entries, {MIN_TABLE_ENTRIES}..{MAX_TABLE_ENTRIES}")
    return size


def personal_table(key: bytes, payload: int, table_size: int) -> bytes:
    """The plain decryption table of the licence with this payload, for a work sealed
    under `key` with tables of `table_size` entries."""
    raw_key = validate_key(key)
    value = validate_payload(payload)
    size = check_table_size(table_size)
    entries = mark_entries(raw_key, value, size) - keyed.noise_table(raw_key, size)
    return MAGIC + size.to_bytes(4, "big") + entries.astype("<i2").tobytes()


def read_table(data: bytes, table_size: int) -> NDArray[np.int32]:
    """The entries of a plain table, which must have `table_size` of them."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SealedFormatError("a decryption table is bytes")
    raw = bytes(data)
    if raw[: len(MAGIC)] != MAGIC or len(raw) < _HEADER:
        raise SealedFormatError("not a decryption table")
    size = int.from_bytes(raw[len(MAGIC) : _HEADER], "big")
    if size != check_table_size(table_size) or len(raw) != _HEADER + 2 * size:
        raise SealedFormatError("the decryption table is not for this container")
    return np.frombuffer(raw, dtype="<i2", offset=_HEADER).astype(np.int32)
