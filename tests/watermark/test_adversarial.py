"""Pictures built to break the mark: flat, saturated, hard-edged, tiny, transparent.

Each either marks at 40 dB or more and reads back exactly, or is refused with a clear
error; none may produce a numpy warning (every warning is an error here), and none may
come back damaged. Expected outcomes were worked out by hand from the pictures: a flat
picture has room for a faint mark both ways (or, when pure black or white, one way, which
the blind reader still finds); a picture that is pure black and white everywhere with hard
edges has no room, and the self-check refuses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.watermark.conftest import KEY, PAYLOAD
from tests.watermark.photographs import photograph
from watermark import (
    EmbedCheckError,
    ImageTooSmallError,
    Params,
    UnsupportedImageError,
    embed,
    extract,
)
from watermark.grid import box_mean
from watermark.mask import choose_cell, texture
from watermark.planes import Planes, luma_of
from watermark.selfcheck import psnr as library_psnr

pytestmark = pytest.mark.filterwarnings("error")

W, H = 384, 320


def psnr(original: Image.Image, marked: Image.Image) -> float:
    """Over the colour channels only: alpha is never touched and must not dilute the figure."""
    colours = 1 if original.mode in {"L", "LA"} else 3
    shape = (original.height, original.width, -1)
    x = np.asarray(original, dtype=np.float64).reshape(shape)[:, :, :colours]
    y = np.asarray(marked, dtype=np.float64).reshape(shape)[:, :, :colours]
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _rgb(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(pixels, np.uint8), mode="RGB")


def _two_tone() -> Image.Image:
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[:, : W // 2] = 255
    pixels[:, W // 2 :] = (40, 90, 160)
    return _rgb(pixels)


def _saturated_regions() -> Image.Image:
    rng = np.random.default_rng(5)
    pixels = np.clip(rng.normal(128, 30, (H, W, 3)), 0, 255)
    pixels[: H // 2] = 255  # a blown-out sky over half the frame
    pixels[H - 40 :, : W // 3] = 0  # a crushed shadow
    return _rgb(pixels)


def _transparent_in_parts() -> Image.Image:
    rng = np.random.default_rng(6)
    pixels = np.zeros((H, W, 4), np.uint8)
    pixels[:, :, :3] = np.clip(rng.normal(128, 20, (H, W, 3)), 0, 255)
    pixels[:, :, 3] = 255
    pixels[:, : W // 2, 3] = 0  # the left half fully transparent...
    pixels[:, : W // 4, :3] = 0  # ...and, in part, transparent black
    return Image.fromarray(pixels, mode="RGBA")


def _one_pixel_stripes() -> Image.Image:
    x = np.arange(W)[None, :].repeat(H, 0)
    return Image.fromarray(((x % 2) * 255).astype(np.uint8), mode="L")


MARKED = {
    "all white": lambda: Image.new("RGB", (W, H), (255, 255, 255)),
    "all black": lambda: Image.new("RGB", (W, H), (0, 0, 0)),
    "all white, greyscale": lambda: Image.new("L", (W, H), 255),
    "one flat colour": lambda: Image.new("RGB", (W, H), (30, 140, 200)),
    "pure red (two channels at their limits)": lambda: Image.new("RGB", (W, H), (255, 0, 0)),
    "saturated regions": _saturated_regions,
    "hard-edged two-tone": _two_tone,
    "one-pixel black and white stripes": _one_pixel_stripes,
    "alpha fully transparent in parts": _transparent_in_parts,
}


@pytest.mark.parametrize("name", MARKED)
def test_an_adversarial_picture_marks_above_40_db_and_reads_back(name: str) -> None:
    original = MARKED[name]()

    marked = embed(original, KEY, PAYLOAD)

    assert psnr(original, marked) >= 40.0
    assert extract(marked, KEY).payload == PAYLOAD
    assert extract(marked, KEY, reference=original).payload == PAYLOAD


def test_transparent_pixels_keep_their_alpha() -> None:
    original = _transparent_in_parts()
    marked = embed(original, KEY, PAYLOAD)
    assert marked.getchannel("A").tobytes() == original.getchannel("A").tobytes()


def test_a_picture_of_pure_black_and_white_blocks_has_no_room_and_is_refused() -> None:
    y, x = np.mgrid[0:H, 0:W]
    checker = Image.fromarray(((x // 16 + y // 16) % 2 * 255).astype(np.uint8), mode="L")

    with pytest.raises(EmbedCheckError, match="does not read back"):
        embed(checker, KEY, PAYLOAD)


def _patchwork() -> Image.Image:
    """A small smooth picture of flat tiles, most of them pure black or white."""
    levels = [255, 0, 10, 4, 208, 0, 0, 255, 0, 0, 208, 255, 0, 0, 255, 255, 220, 138, 76, 0]
    tiles = np.array(levels, np.uint8).reshape(4, 5)
    return Image.fromarray(np.kron(tiles, np.ones((64, 64), np.uint8)), mode="L")


def test_when_large_cells_cannot_carry_the_mark_embed_falls_back_to_small_ones() -> None:
    original = _patchwork()
    # Smooth, so the largest cells come first; on 256 x 320 pixels those are too few to
    # carry the code past the tiles' hard edges, and that copy fails its check.
    assert choose_cell(luma_of(original), Params()) == 8
    with pytest.raises(EmbedCheckError):
        embed(original, KEY, PAYLOAD, params=Params(cell=8))

    marked = embed(original, KEY, PAYLOAD)

    assert psnr(original, marked) >= 40.0
    assert extract(marked, KEY).payload == PAYLOAD
    leaked = marked.crop((10, 12, 310, 250))
    assert extract(leaked, KEY, reference=original).payload == PAYLOAD


@pytest.mark.parametrize("size", [(1, 512), (512, 1), (1, 1)])
def test_a_one_pixel_wide_gradient_is_refused_as_too_small(size: tuple[int, int]) -> None:
    ramp = np.linspace(0, 255, size[0] * size[1]).reshape(size[1], size[0])
    with pytest.raises(ImageTooSmallError):
        embed(Image.fromarray(ramp.astype(np.uint8), mode="L"), KEY, PAYLOAD)


def test_a_copy_below_the_psnr_floor_is_refused_not_returned() -> None:
    original = _saturated_regions()
    # The budget puts this mark near 40 dB; a floor of 45 dB cannot be met.
    with pytest.raises(EmbedCheckError, match=r"PSNR 4\d\.\d dB .* floor of 45\.0 dB"):
        embed(original, KEY, PAYLOAD, params=Params(psnr_floor=45.0))


def test_a_non_finite_mark_is_refused_before_the_cast() -> None:
    planes = Planes(np.full((8, 8, 3), 200, np.uint8), "RGB", 3)
    delta = np.zeros((8, 8), np.float32)
    delta[3, 4] = np.nan
    with pytest.raises(EmbedCheckError, match="non-finite"):
        planes.with_luma_added(delta)
    delta[3, 4] = np.inf
    with pytest.raises(EmbedCheckError, match="non-finite"):
        planes.with_luma_added(delta)


def test_the_library_psnr_matches_the_definition() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # one error of 10 over 48 values: MSE 100/48
    assert library_psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 48 / 100))
    assert library_psnr(a, a) == math.inf


def test_a_box_mean_of_zeros_beside_large_values_is_never_negative() -> None:
    # Running-sum box filters cancel: zeros after large values came out a hair below zero.
    rng = np.random.default_rng(8)
    a = (rng.random((90, 70)) * 1e6).astype(np.float32)
    a[30:60, 20:50] = 0.0
    means = box_mean(a, 1)
    assert means.min() >= 0.0
    assert np.all(means[31:59, 21:49] == 0.0)
    # Against a plain reference: the mean of each 3x3 window of the edge-padded array.
    padded = np.pad(a.astype(np.float64), 1, mode="edge")
    reference = np.mean(
        [padded[i : i + 90, j : j + 70] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_allclose(means, reference, rtol=1e-6)


def test_the_texture_of_a_flat_region_is_zero_not_nan() -> None:
    luma = np.full((64, 64), 254.0, np.float32)
    luma[:, :32] = np.float32(17.3)
    sigma = texture(luma, Params(cell=4))
    assert np.all(np.isfinite(sigma))
    assert sigma[:, :6].max() == 0.0


def test_a_suspect_with_non_finite_pixels_is_refused() -> None:
    plane = np.full((128, 128), 0.5, np.float32)
    plane[7, 9] = np.nan
    with pytest.raises(UnsupportedImageError, match="not finite"):
        luma_of(Image.fromarray(plane, mode="F"), min_pixels=96 * 96)


@pytest.mark.parametrize(
    ("suspect", "master"),
    [
        pytest.param(lambda: Image.new("L", (512, 512), 128), lambda: photograph("astronaut"),
                     id="a flat grey copy against a photograph"),
        pytest.param(lambda: Image.effect_noise((384, 320), 60), lambda: Image.new("L", (W, H)),
                     id="noise against an all-black master"),
        pytest.param(lambda: Image.new("L", (W, H), 255), lambda: Image.new("L", (W, H)),
                     id="all white against all black"),
    ],
)
def test_an_informed_read_of_a_copy_of_something_else_says_no_mark(
    suspect: Callable[[], Image.Image], master: Callable[[], Image.Image]
) -> None:
    result = extract(suspect(), KEY, reference=master())
    assert (result.found, result.payload) == (False, None)


# Random small pictures made of blocks that are flat, saturated, noisy or ramps.
_BLOCK = st.tuples(
    st.sampled_from(["flat", "black", "white", "noise", "ramp"]),
    st.integers(0, 255),
    st.integers(1, 60),
)


def _picture(blocks: list[tuple[str, int, int]], colour: bool, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    side = 64  # a 4 x 5 grid of 64-pixel blocks: 256 x 320
    out = np.zeros((4 * side, 5 * side, 3), np.float64)
    ramp = np.linspace(0.0, 1.0, side)[None, :]
    for index, (kind, level, spread) in enumerate(blocks):
        top, left = (index // 5) * side, (index % 5) * side
        area = out[top : top + side, left : left + side]
        if kind == "flat":
            area[:] = level
        elif kind == "white":
            area[:] = 255
        elif kind == "noise":
            area[:] = rng.normal(level, spread, area.shape)
        elif kind == "ramp":
            area[:] = (level + spread * 3 * ramp)[:, :, None]
        # "black" stays 0
    pixels = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if not colour:
        return Image.fromarray(pixels[:, :, 0], mode="L")
    return Image.fromarray(pixels, mode="RGB")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(_BLOCK, min_size=20, max_size=20),
    colour=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    payload=st.integers(0, 2**64 - 1),
)
def test_embed_returns_a_readable_copy_above_the_floor_or_raises(
    blocks: list[tuple[str, int, int]], colour: bool, seed: int, payload: int
) -> None:
    original = _picture(blocks, colour, seed)
    try:
        marked = embed(original, KEY, payload)
    except EmbedCheckError as refusal:
        reason = str(refusal)
    else:
        reason = ""
    if reason:
        # Refused, clearly, for one of the check's two reasons: nothing damaged handed over.
        assert "does not read back" in reason or "below the floor" in reason
        return
    x = np.asarray(original, dtype=np.float64)
    y = np.asarray(marked, dtype=np.float64)
    assert np.isfinite(y).all()
    mse = float(np.mean((x - y) ** 2))
    assert mse == 0 or 10.0 * math.log10(255.0**2 / mse) >= 40.0
    result = extract(marked, KEY)
    assert (result.found, result.payload) == (True, payload)
