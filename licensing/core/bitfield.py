"""Bitfields of held pieces, as BitTorrent lays them out.

Bit ``i`` is the ``(i % 8)``-th most significant bit of byte ``i // 8``; the spare
bits of the last byte are zero. The same layout as the platform's holdings index,
which receives them base64-encoded (standard alphabet, padded).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable


class BitfieldError(ValueError):
    """A bitfield of the wrong length, with spare bits set, or not base64."""


def bitfield_length(piece_count: int) -> int:
    return (piece_count + 7) // 8


def bitfield_from_indices(indices: Iterable[int], piece_count: int) -> bytes:
    bits = bytearray(bitfield_length(piece_count))
    for index in indices:
        if not 0 <= index < piece_count:
            raise BitfieldError(f"piece {index} is outside 0..{piece_count - 1}")
        bits[index >> 3] |= 0x80 >> (index & 7)
    return bytes(bits)


def bitfield_full(piece_count: int) -> bytes:
    return bitfield_from_indices(range(piece_count), piece_count)


def bitfield_has(bits: bytes | bytearray, index: int) -> bool:
    return bool(bits[index >> 3] & (0x80 >> (index & 7)))


def bitfield_set(bits: bytearray, index: int) -> bool:
    """Set bit ``index`` in place; True if it was clear."""
    mask = 0x80 >> (index & 7)
    if bits[index >> 3] & mask:
        return False
    bits[index >> 3] |= mask
    return True


def bitfield_clear(bits: bytearray, index: int) -> bool:
    """Clear bit ``index`` in place; True if it was set."""
    mask = 0x80 >> (index & 7)
    if not bits[index >> 3] & mask:
        return False
    bits[index >> 3] &= ~mask & 0xFF
    return True


def bitfield_indices(bits: bytes | bytearray, piece_count: int) -> list[int]:
    """The set pieces, in order."""
    return [i for i in range(piece_count) if bits[i >> 3] & (0x80 >> (i & 7))]


def bitfield_missing(bits: bytes | bytearray, piece_count: int) -> list[int]:
    """The clear pieces, in order."""
    return [i for i in range(piece_count) if not bits[i >> 3] & (0x80 >> (i & 7))]


def bitfield_count(bits: bytes | bytearray) -> int:
    return sum(byte.bit_count() for byte in bits)


def check_bitfield(bits: bytes | bytearray, piece_count: int) -> bytes:
    """``bits`` if it is a well-formed bitfield for ``piece_count`` pieces."""
    if len(bits) != bitfield_length(piece_count):
        raise BitfieldError(
            f"a bitfield for {piece_count} pieces is {bitfield_length(piece_count)} bytes, "
            f"not {len(bits)}"
        )
    spare = len(bits) * 8 - piece_count
    if spare and bits[-1] & ((1 << spare) - 1):
        raise BitfieldError("the bitfield sets bits past the last piece")
    return bytes(bits)


def bitfield_encode(bits: bytes) -> str:
    return base64.b64encode(bits).decode("ascii")


def bitfield_decode(text: object, piece_count: int) -> bytes:
    if not isinstance(text, str) or len(text) > 4 * bitfield_length(piece_count) + 8:
        raise BitfieldError("the bitfield is not a base64 string of the right size")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BitfieldError("the bitfield is not base64") from None
    return check_bitfield(raw, piece_count)
