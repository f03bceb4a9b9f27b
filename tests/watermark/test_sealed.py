"""Sealed delivery for images: what a table yields, what the container alone yields."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from tests.watermark.photographs import jpeg_file, photograph
from tests.watermark.sealed_copies import (
    KEY,
    container,
    licensed,
    master,
    payloads,
    pixels,
    png_bytes,
    psnr,
)
from watermark.sealed import accuse, container_info, personal_table, seal_image, unseal
from watermark.sealed.container import read_container
from watermark.sealed.table import MAGIC

PAYLOAD = 0x0123_4567_89AB_CDEF


def _blank_table(size: int) -> bytes:
    """A table of zeros: the container read as it is, as an agent without a table would."""
    return MAGIC + size.to_bytes(4, "big") + bytes(2 * size)


@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee", "moon"])
def test_a_licensed_copy_is_close_to_the_master_and_names_its_licence(name: str) -> None:
    copy = licensed(name, PAYLOAD)
    assert psnr(pixels(master(name)), pixels(copy)) >= 40.0
    others = payloads(99, seed=1)
    result = accuse(copy, master(name), KEY, [*others, PAYLOAD])
    assert [c.payload for c in result.accused] == [PAYLOAD]
    assert result.accused[0].false_accusation_bound < 1e-6


@pytest.mark.parametrize("name", ["astronaut", "camera", "moon"])
def test_the_container_without_a_table_is_useless(name: str) -> None:
    sealed = container(name)
    view = unseal(sealed, _blank_table(container_info(sealed).table_size))
    assert psnr(pixels(master(name)), pixels(view)) <= 10.0


def test_two_licences_get_different_copies_and_each_traces_to_its_own() -> None:
    first, second = licensed("chelsea", 1), licensed("chelsea", 2)
    assert first != second
    issued = [1, 2, *payloads(50, seed=2)]
    assert [c.payload for c in accuse(first, master("chelsea"), KEY, issued).accused] == [1]
    assert [c.payload for c in accuse(second, master("chelsea"), KEY, issued).accused] == [2]


def test_sealing_and_unsealing_are_deterministic() -> None:
    again = seal_image(master("camera"), KEY)
    assert again == container("camera")
    table = personal_table(KEY, PAYLOAD, container_info(again).table_size)
    assert unseal(again, table) == unseal(again, table) == licensed("camera", PAYLOAD)


def test_the_sealed_coefficients_say_nothing_about_the_picture() -> None:
    """Each sealed coefficient hides its cell's share of the picture under noise: it does
    not even correlate with the cell's mean brightness (worked out here from the pixels),
    with which the unsealed coefficient correlates almost perfectly."""
    parts = read_container(container("camera"))
    cell, rows, cols = parts.info.cell, parts.info.rows, parts.info.cols
    luma = pixels(master("camera")).astype(np.float64)[: rows * cell, : cols * cell]
    means = luma.reshape(rows, cell, cols, cell).mean(axis=(1, 3)).ravel()
    sealed = parts.sealed.astype(np.float64).ravel()
    assert abs(np.corrcoef(means, sealed)[0, 1]) < 0.05


def test_a_jpeg_master_comes_back_as_a_jpeg_with_its_subsampling() -> None:
    data = jpeg_file("rocket.jpg")  # a camera JPEG, as it ships
    source = Image.open(io.BytesIO(data))
    sealed = seal_image(data, KEY)
    info = container_info(sealed)
    assert info.content_type == "image/jpeg"
    copy = unseal(sealed, personal_table(KEY, PAYLOAD, info.table_size))
    image = Image.open(io.BytesIO(copy))
    assert image.format == "JPEG"
    assert image.size == source.size
    assert JpegImagePlugin.get_sampling(image) == JpegImagePlugin.get_sampling(source)
    # the mark at 40 dB plus one re-save at quality 95
    assert psnr(np.asarray(source), np.asarray(image)) >= 36.0


def test_alpha_is_kept_exactly_and_a_lossless_webp_stays_lossless() -> None:
    rgba = photograph("astronaut").convert("RGBA")
    alpha = np.zeros((512, 512), np.uint8)
    alpha[:, 256:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    data = png_bytes(rgba)
    sealed = seal_image(data, KEY)
    copy = unseal(sealed, personal_table(KEY, PAYLOAD, container_info(sealed).table_size))
    out = pixels(copy)
    assert out.shape == (512, 512, 4)
    assert np.array_equal(out[:, :, 3], alpha)
    webp = io.BytesIO()
    photograph("coffee").save(webp, "WEBP", lossless=True)
    sealed = seal_image(webp.getvalue(), KEY)
    assert container_info(sealed).content_type == "image/webp"
    copy = unseal(sealed, personal_table(KEY, PAYLOAD, container_info(sealed).table_size))
    assert psnr(np.asarray(photograph("coffee")), pixels(copy)) >= 40.0


def test_a_greyscale_master_stays_greyscale() -> None:
    copy = licensed("camera", PAYLOAD)
    assert Image.open(io.BytesIO(copy)).mode == "L"
