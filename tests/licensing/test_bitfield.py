"""The one bitfield module: BitTorrent's layout, worked out by hand."""

from __future__ import annotations

import pytest

from licensing.core.bitfield import (
    BitfieldError,
    bitfield_clear,
    bitfield_count,
    bitfield_decode,
    bitfield_encode,
    bitfield_from_indices,
    bitfield_full,
    bitfield_has,
    bitfield_indices,
    bitfield_missing,
    bitfield_set,
    check_bitfield,
)


def test_the_layout_is_most_significant_bit_first() -> None:
    # pieces 0, 7 and 9 of 10: 1000_0001 0100_0000 (spare bits zero)
    assert bitfield_from_indices([0, 7, 9], 10) == bytes([0b1000_0001, 0b0100_0000])
    assert bitfield_full(10) == bytes([0xFF, 0b1100_0000])
    assert bitfield_indices(bytes([0b1000_0001, 0b0100_0000]), 10) == [0, 7, 9]
    assert bitfield_missing(bytes([0b1000_0001, 0b0100_0000]), 10) == [1, 2, 3, 4, 5, 6, 8]
    assert bitfield_count(bitfield_full(10)) == 10


def test_set_and_clear_work_in_place_and_say_whether_they_changed_anything() -> None:
    bits = bytearray(2)
    assert bitfield_set(bits, 9)
    assert bits == bytearray([0, 0b0100_0000])
    assert not bitfield_set(bits, 9)
    assert bitfield_has(bits, 9)
    assert not bitfield_has(bits, 8)
    assert bitfield_clear(bits, 9)
    assert bits == bytearray(2)
    assert not bitfield_clear(bits, 9)


def test_malformed_bitfields_are_refused() -> None:
    with pytest.raises(BitfieldError, match="2 bytes, not 1"):
        check_bitfield(b"\xff", 10)
    with pytest.raises(BitfieldError, match="past the last piece"):
        check_bitfield(bytes([0xFF, 0b1110_0000]), 10)
    with pytest.raises(BitfieldError, match="outside"):
        bitfield_from_indices([10], 10)
    with pytest.raises(BitfieldError, match="not base64"):
        bitfield_decode("!!!!", 10)
    assert bitfield_decode(bitfield_encode(bytes([0x80, 0x40])), 10) == bytes([0x80, 0x40])
