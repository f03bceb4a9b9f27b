"""Bytes in, bytes out: the agent's call keeps the master's format."""

from __future__ import annotations

import io

import pytest
from PIL import Image, JpegImagePlugin

from tests.watermark.conftest import KEY, PAYLOAD
from watermark import embed_bytes, extract_bytes


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "out_mode"),
                         [("RGB", "RGB"), ("RGBA", "RGBA"), ("L", "L"), ("P", "RGB")])
def test_png_stays_png(photo: Image.Image, mode: str, out_mode: str) -> None:
    marked = embed_bytes(_encoded(photo.convert(mode), "PNG"), KEY, PAYLOAD)
    image = Image.open(io.BytesIO(marked))
    assert (image.format, image.mode, image.size) == ("PNG", out_mode, photo.size)
    assert extract_bytes(marked, KEY).payload == PAYLOAD


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_stays_jpeg_with_its_subsampling(photo: Image.Image, subsampling: int) -> None:
    source = _encoded(photo, "JPEG", quality=92, subsampling=subsampling)
    marked = embed_bytes(source, KEY, PAYLOAD)
    image = Image.open(io.BytesIO(marked))
    assert image.format == "JPEG"
    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    assert JpegImagePlugin.get_sampling(image) == subsampling
    assert extract_bytes(marked, KEY).payload == PAYLOAD


def test_jpeg_keeps_its_metadata(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels are marked, the tag stays true
    icc = b"\0" * 128
    source = _encoded(photo, "JPEG", exif=exif.tobytes(), icc_profile=icc)
    image = Image.open(io.BytesIO(embed_bytes(source, KEY, PAYLOAD)))
    assert image.getexif()[0x0112] == 6
    assert image.info.get("icc_profile") == icc


def test_greyscale_jpeg_stays_greyscale(photo: Image.Image) -> None:
    marked = embed_bytes(_encoded(photo.convert("L"), "JPEG", quality=95), KEY, PAYLOAD)
    assert Image.open(io.BytesIO(marked)).mode == "L"
    assert extract_bytes(marked, KEY).payload == PAYLOAD


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_stays_webp(photo: Image.Image, lossless: bool) -> None:
    source = _encoded(photo, "WEBP", lossless=lossless, quality=90)
    marked = embed_bytes(source, KEY, PAYLOAD)
    assert Image.open(io.BytesIO(marked)).format == "WEBP"
    assert (b"VP8L" in marked[:64]) == lossless
    assert extract_bytes(marked, KEY).payload == PAYLOAD


def test_an_informed_read_takes_the_master_as_bytes(photo: Image.Image) -> None:
    master = _encoded(photo, "PNG")
    marked = Image.open(io.BytesIO(embed_bytes(master, KEY, PAYLOAD)))
    suspect = _encoded(marked.crop((20, 16, 300, 240)), "JPEG", quality=85)
    result = extract_bytes(suspect, KEY, reference=master)
    assert result.informed
    assert result.payload == PAYLOAD


def test_a_colour_keyed_png_keeps_its_transparency(photo: Image.Image) -> None:
    keyed = photo.copy()
    keyed.paste((0, 0, 0), (40, 40, 120, 100))
    source = _encoded(keyed, "PNG", transparency=(0, 0, 0))
    image = Image.open(io.BytesIO(embed_bytes(source, KEY, PAYLOAD)))
    assert image.mode == "RGBA"
    original = Image.open(io.BytesIO(source)).convert("RGBA")
    assert image.getchannel("A").tobytes() == original.getchannel("A").tobytes()
    assert image.getchannel("A").getextrema() == (0, 255)
