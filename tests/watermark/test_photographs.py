"""Real photographs mark invisibly and read back exactly (no numpy warning on the way).

The mark once wrecked photographs with flat or saturated areas (the astronaut's white suit
came back at 5 dB, unreadable): a variance a hair below zero gave a NaN amplitude. These
tests run on real camera content with every warning an error. PSNR is computed here, in
float64 over the colour channels, independently of the library's own check.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.watermark import attacks
from tests.watermark.conftest import KEY, PAYLOAD
from tests.watermark.photographs import SMALL, jpeg_file, photograph
from watermark import embed, embed_bytes, extract, extract_bytes

pytestmark = pytest.mark.filterwarnings("error")


def psnr(original: Image.Image, marked: Image.Image) -> float:
    bands = "L" if original.mode == "L" else "RGB"
    x = np.asarray(original.convert(bands), dtype=np.float64)
    y = np.asarray(marked.convert(bands), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("name", SMALL)
def test_a_real_photograph_marks_above_40_db_and_reads_back_exactly(name: str) -> None:
    original = photograph(name)

    marked = embed(original, KEY, PAYLOAD)

    assert marked.mode == original.mode
    assert marked.size == original.size
    assert psnr(original, marked) >= 40.0
    result = extract(marked, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)


def test_the_portrait_with_flat_black_and_white_areas_is_marked_not_wrecked() -> None:
    original = photograph("astronaut")
    pixels = np.asarray(original, dtype=np.int16)
    # What broke it: blocks of exactly one value (black background, the suit's clipped
    # highlights), whose variance came out a hair below zero.
    blocks = pixels[:, :, 0].reshape(128, 4, 128, 4).transpose(0, 2, 1, 3).reshape(128, 128, 16)
    assert np.mean(blocks.min(axis=2) == blocks.max(axis=2)) > 0.05

    marked = np.asarray(embed(original, KEY, PAYLOAD), dtype=np.int16)

    # A mark of a few grey levels at most, not noise: the wrecked copy changed most pixels
    # by tens of levels.
    change = np.abs(marked - pixels)
    assert np.percentile(change, 99) <= 16
    assert float(np.mean(change)) < 3.0


@pytest.mark.parametrize("name", ["astronaut", "hubble_deep_field"])
def test_a_real_photograph_survives_jpeg_75_read_blind(name: str) -> None:
    marked = embed(photograph(name), KEY, PAYLOAD)

    result = extract(attacks.jpeg(marked, 75), KEY)

    assert result.payload == PAYLOAD


def test_a_cropped_real_photograph_is_traced_with_the_master() -> None:
    original = photograph("coffee")
    leaked = attacks.centre_crop(embed(original, KEY, PAYLOAD), 0.9)

    result = extract(leaked, KEY, reference=original)

    assert (result.found, result.payload, result.informed) == (True, PAYLOAD, True)


def test_a_camera_jpeg_file_is_marked_as_the_agent_marks_it() -> None:
    data = jpeg_file("rocket.jpg")

    marked = embed_bytes(data, KEY, PAYLOAD)

    assert Image.open(io.BytesIO(marked)).format == "JPEG"
    assert psnr(Image.open(io.BytesIO(data)), Image.open(io.BytesIO(marked))) >= 38.0
    assert extract_bytes(marked, KEY).payload == PAYLOAD
