"""Malformed containers, tables and suspects: a clear error, never a half-written copy."""

from __future__ import annotations

import contextlib
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.watermark.sealed_copies import KEY, container, master
from watermark.errors import (
    CorruptImageError,
    ImageTooSmallError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedImageError,
)
from watermark.sealed import (
    SealedFormatError,
    accuse,
    container_info,
    personal_table,
    seal,
    seal_image,
    unseal,
)
from watermark.sealed.container import MAGIC
from watermark.sealed.table import MAGIC as TABLE_MAGIC


def _split(data: bytes) -> tuple[dict[str, object], bytes]:
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    return json.loads(data[start : start + length]), data[start + length :]


def _join(header: dict[str, object], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return MAGIC + len(text).to_bytes(4, "big") + text + body


def _table(data: bytes) -> bytes:
    return personal_table(KEY, 7, container_info(data).table_size)


@pytest.mark.parametrize("change", [
    {"version": 3}, {"width": 10**9}, {"height": -1}, {"width": "512"}, {"mode": "CMYK"},
    {"cell": 0}, {"table_size": 3}, {"table_size": 1 << 40}, {"lookups": 3},
    {"code_bits": 64}, {"lookup_seed": "zz" * 16}, {"lookup_seed": 5}, {"streams": [1]},
    {"encoding": {"format": "GIF"}}, {"encoding": {"format": "PNG", "dpi": [0, -1]}},
    {"encoding": {"format": "PNG", "icc_profile": "not base64!"}},
])
def test_a_header_field_out_of_bounds_is_refused(change: dict[str, object]) -> None:
    header, body = _split(container("camera"))
    header.update(change)
    with pytest.raises(SealedFormatError):
        unseal(_join(header, body), _table(container("camera")))


@pytest.mark.parametrize("damage", ["truncated", "trailing", "magic", "header-json",
                                    "stream-bytes", "bomb", "nested"])
def test_a_damaged_container_is_refused(damage: str) -> None:
    data = container("camera")
    table = _table(data)
    header, body = _split(data)
    if damage == "truncated":
        bad = data[: len(data) - 100]
    elif damage == "trailing":
        bad = data + b"\0"
    elif damage == "magic":
        bad = b"PMSEAL9\n" + data[len(MAGIC):]
    elif damage == "header-json":
        bad = MAGIC + (5).to_bytes(4, "big") + b"{oops" + body
    elif damage == "stream-bytes":
        bad = data[:-40] + bytes(40)
    elif damage == "nested":  # a header that would exhaust the JSON parser's stack
        deep = b"[" * 100_000 + b"]" * 100_000
        bad = MAGIC + len(deep).to_bytes(4, "big") + deep + body
    else:  # the complement stream inflates far past its stated size
        bomb = zlib.compress(bytes(64 << 20), 9)
        streams = list(header["streams"])  # type: ignore[call-overload]
        rest = body[streams[0]:]
        streams[0] = len(bomb)
        header["streams"] = streams
        bad = _join(header, bomb + rest)
    with pytest.raises(SealedFormatError):
        unseal(bad, table)


@pytest.mark.parametrize("bad", [b"", b"PMTABLE1", TABLE_MAGIC + (1 << 15).to_bytes(4, "big"),
                                 b"x" * 100, TABLE_MAGIC + (1 << 16).to_bytes(4, "big")
                                 + bytes(1 << 17)])
def test_a_malformed_or_mismatched_table_is_refused(bad: bytes) -> None:
    with pytest.raises(SealedFormatError):
        unseal(container("camera"), bad)


def test_a_key_or_payload_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidKeyError):
        personal_table(b"short", 1, 1 << 15)
    with pytest.raises(InvalidPayloadError):
        personal_table(KEY, -1, 1 << 15)
    with pytest.raises(SealedFormatError):
        personal_table(KEY, 1, 1000)


@pytest.mark.parametrize(("data", "error"), [
    (b"", CorruptImageError), (b"not an image", UnsupportedImageError),
])
def test_sealing_refuses_what_is_not_an_image(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        seal_image(data, KEY)


def test_sealing_refuses_an_image_too_small_to_carry_the_code() -> None:
    from PIL import Image

    from tests.watermark.sealed_copies import png_bytes

    with pytest.raises(ImageTooSmallError):
        seal_image(png_bytes(Image.new("RGB", (100, 100), "grey")), KEY)


def test_a_flat_or_saturated_picture_is_sealed_and_traced() -> None:
    from PIL import Image

    from tests.watermark.sealed_copies import png_bytes

    for colour in ("black", "white", (128, 128, 128)):
        flat = png_bytes(Image.new("RGB", (320, 320), colour))
        sealed = seal_image(flat, KEY)
        copy = unseal(sealed, personal_table(KEY, 9, container_info(sealed).table_size))
        named = [c.payload for c in accuse(copy, flat, KEY, [1, 2, 9, 10]).accused]
        assert named == [9], named  # half the mark clips at black or white: still enough


def test_a_suspect_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(UnsupportedImageError):
        accuse(b"\x89PNG\r\n\x1a\n garbage", master("camera"), KEY, [1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=600), value=st.integers(0, 255))
def test_any_single_byte_change_in_the_header_is_refused_or_harmless(position: int,
                                                                      value: int) -> None:
    data = bytearray(container("moon"))
    data[position] = value
    with contextlib.suppress(SealedFormatError):
        unseal(bytes(data), _table(container("moon")))


def test_a_png_whose_resolution_says_nothing_is_sealed_without_it() -> None:
    import io

    from PIL import Image, PngImagePlugin

    from tests.watermark.photographs import photograph

    info = PngImagePlugin.PngInfo()
    buffer = io.BytesIO()
    photograph("camera").save(buffer, "PNG", dpi=(0, 0), pnginfo=info)
    sealed = seal(buffer.getvalue(), "image/png", KEY)
    copy = unseal(sealed, personal_table(KEY, 3, container_info(sealed).table_size))
    assert Image.open(io.BytesIO(copy)).size == (512, 512)
