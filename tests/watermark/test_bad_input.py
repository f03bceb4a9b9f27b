"""Bad input gets a clear, catchable error, before any large allocation."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.watermark.conftest import KEY, PAYLOAD
from watermark import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedImageError,
    WatermarkError,
    embed,
    embed_bytes,
    extract,
    extract_bytes,
)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny compressed body: a bomb."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(
        b"IEND", b"")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_every_refusal_is_an_unsupported_image_error() -> None:
    for error in (ImageTooSmallError, ImageTooLargeError, CorruptImageError):
        assert issubclass(error, UnsupportedImageError)
        assert issubclass(error, WatermarkError)


@pytest.mark.parametrize("size", [(0, 0), (255, 255), (2000, 32)])
def test_it_refuses_images_too_small_to_carry_the_payload(size: tuple[int, int]) -> None:
    with pytest.raises(ImageTooSmallError):
        embed(Image.new("RGB", size), KEY, PAYLOAD)


def test_it_refuses_empty_data() -> None:
    with pytest.raises(CorruptImageError):
        embed_bytes(b"", KEY, PAYLOAD)


@pytest.mark.parametrize("size", [(8000, 8000), (10000, 10000), (30000, 30000), (2**31 - 1, 3)])
def test_it_refuses_decompression_bombs_from_the_header(size: tuple[int, int]) -> None:
    bomb = _png_header_only(*size)
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError):
        embed_bytes(bomb, KEY, PAYLOAD)
    with pytest.raises(ImageTooLargeError):
        extract_bytes(bomb, KEY)


def test_the_pixel_limit_is_a_parameter(photo: Image.Image) -> None:
    data = _encoded(photo, "PNG")
    with pytest.raises(ImageTooLargeError):
        embed_bytes(data, KEY, PAYLOAD, max_pixels=10_000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_it_refuses_truncated_files(photo: Image.Image, fmt: str) -> None:
    data = _encoded(photo, fmt)
    with pytest.raises(CorruptImageError):
        embed_bytes(data[: len(data) // 2], KEY, PAYLOAD)


def test_it_refuses_garbage() -> None:
    with pytest.raises(UnsupportedImageError):
        embed_bytes(b"this is not an image at all" * 10, KEY, PAYLOAD)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_it_marks_only_png_jpeg_and_webp(photo: Image.Image, fmt: str) -> None:
    with pytest.raises(UnsupportedImageError):
        embed_bytes(_encoded(photo, fmt), KEY, PAYLOAD)


@pytest.mark.parametrize("mode", ["1", "I;16", "CMYK", "F"])
def test_it_refuses_modes_it_cannot_mark(photo: Image.Image, mode: str) -> None:
    with pytest.raises(UnsupportedImageError):
        embed(photo.convert("L").convert(mode) if mode != "CMYK" else photo.convert(mode),
              KEY, PAYLOAD)


def test_it_refuses_a_cmyk_jpeg(photo: Image.Image) -> None:
    with pytest.raises(UnsupportedImageError):
        embed_bytes(_encoded(photo.convert("CMYK"), "JPEG"), KEY, PAYLOAD)


def test_it_refuses_animations(photo: Image.Image) -> None:
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImageError):
        embed_bytes(data, KEY, PAYLOAD)


@pytest.mark.parametrize("payload", [-1, 2**64, 1.5, "7", None, True])
def test_it_refuses_payloads_that_are_not_64_bit_unsigned(photo: Image.Image,
                                                          payload: object) -> None:
    with pytest.raises(InvalidPayloadError):
        embed(photo, KEY, payload)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"", b"short", "a text key of 32 characters ....", None])
def test_it_refuses_keys_that_are_not_secret_bytes(photo: Image.Image, key: object) -> None:
    with pytest.raises(InvalidKeyError):
        embed(photo, key, PAYLOAD)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        extract(photo, key)  # type: ignore[arg-type]


def test_it_refuses_something_that_is_not_an_image() -> None:
    with pytest.raises(UnsupportedImageError):
        embed(b"bytes, not a PIL image", KEY, PAYLOAD)  # type: ignore[arg-type]
