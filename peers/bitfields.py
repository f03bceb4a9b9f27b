"""Bitfields of held pieces, as BitTorrent lays them out: bit i is the (i % 8)-th most
significant bit of byte i // 8, and the spare bits of the last byte are zero."""

from __future__ import annotations

import base64
import binascii


class BitfieldError(ValueError):
    pass


def bitfield_decode(text: str, piece_count: int) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BitfieldError("the bitfield is not base64") from None
    if len(raw) != (piece_count + 7) // 8:
        raise BitfieldError(f"a bitfield for {piece_count} pieces is "
                            f"{(piece_count + 7) // 8} bytes, not {len(raw)}")
    spare = len(raw) * 8 - piece_count
    if spare and raw[-1] & ((1 << spare) - 1):
        raise BitfieldError("the bitfield sets bits past the last piece")
    return raw


def bitfield_count(raw: bytes) -> int:
    return sum(bin(byte).count("1") for byte in raw)


def bitfield_encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
