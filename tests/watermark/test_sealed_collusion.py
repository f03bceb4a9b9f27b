"""Coalitions of buyers, unmarked copies and other works: who a sealed copy names."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from tests.watermark import attacks
from tests.watermark.photographs import photograph
from tests.watermark.sealed_attacks import inpainted
from tests.watermark.sealed_copies import (
    KEY,
    OTHER_KEY,
    average,
    container,
    licensed,
    master,
    payloads,
    pixels,
    png_bytes,
    psnr,
)
from watermark.sealed import accuse, tardos
from watermark.sealed.keyed import biases, codeword_seeds

ISSUED = payloads(300, seed=21)


@pytest.mark.parametrize("size", [2, 3, 5])
def test_averaged_copies_name_a_colluder_and_never_an_innocent(size: int) -> None:
    coalition = ISSUED[:size]
    suspect = average([licensed("astronaut", payload) for payload in coalition])
    result = accuse(suspect, master("astronaut"), KEY, ISSUED)
    named = {candidate.payload for candidate in result.accused}
    assert named, "nobody named"
    assert named <= set(coalition)


@pytest.mark.parametrize("size", [2, 3, 5])
def test_copies_mixed_pixel_by_pixel_name_a_colluder_and_never_an_innocent(size: int) -> None:
    coalition = ISSUED[10 : 10 + size]
    stack = np.stack([pixels(licensed("coffee", payload)) for payload in coalition])
    rng = np.random.default_rng(size)
    choice = rng.integers(0, size, stack.shape[1:3])
    mixed = np.take_along_axis(stack, choice[None, :, :, None], axis=0)[0]
    suspect = png_bytes(Image.fromarray(mixed))
    result = accuse(suspect, master("coffee"), KEY, ISSUED)
    named = {candidate.payload for candidate in result.accused}
    assert named
    assert named <= set(coalition)


def test_an_averaged_and_recompressed_copy_still_names_only_colluders() -> None:
    coalition = ISSUED[20:23]
    mean = average([licensed("camera", payload) for payload in coalition])
    suspect = png_bytes(attacks.jpeg(Image.open(io.BytesIO(mean)), 75))
    named = {c.payload for c in accuse(suspect, master("camera"), KEY, ISSUED).accused}
    assert named
    assert named <= set(coalition)


@pytest.mark.parametrize("name", ["astronaut", "camera", "hubble_deep_field", "grass"])
def test_an_unmarked_master_names_nobody_even_after_an_attack(name: str) -> None:
    image = photograph(name)
    rng = np.random.default_rng(3)
    for suspect in (image, attacks.jpeg(image, 50), attacks.noise(image, rng)):
        assert accuse(png_bytes(suspect), master(name), KEY, ISSUED).accused == ()


def test_a_copy_of_a_licence_outside_the_checked_set_names_nobody() -> None:
    outsider = licensed("chelsea", 0xFEED)
    assert accuse(outsider, master("chelsea"), KEY, ISSUED).accused == ()


def test_a_copy_of_another_work_key_names_nobody() -> None:
    other = licensed("chelsea", ISSUED[0], OTHER_KEY)
    assert accuse(other, master("chelsea"), KEY, ISSUED).accused == ()


def test_codewords_follow_their_biases() -> None:
    p = biases(KEY, 2048, 5)
    cutoff = 1.0 / 1500.0
    assert p.min() >= cutoff * 0.999
    assert p.max() <= 1 - cutoff * 0.999
    words = tardos.codewords(codeword_seeds(KEY, list(range(4000))), p)
    # each bit's share of ones is binomial(4000, p): within 5 standard deviations
    share = words.mean(axis=0)
    assert np.all(np.abs(share - p) <= 5 * np.sqrt(p * (1 - p) / 4000) + 1e-9)


def test_the_tail_bound_is_above_the_exact_tail_of_an_innocent_score() -> None:
    """For a short code every codeword can be listed: the exact probability that an
    innocent scores at least s, summed by hand, must be below the bound."""
    p = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.6, 0.05])
    evidence = np.array([0.5, -0.2, 0.3, 0.4, -0.1, 0.6, 0.2, 0.2])
    evidence = evidence / np.linalg.norm(evidence)
    one, zero = np.sqrt((1 - p) / p), -np.sqrt(p / (1 - p))
    outcomes = []
    for bits in itertools.product((0, 1), repeat=p.size):
        b = np.array(bits)
        chance = float(np.prod(np.where(b == 1, p, 1 - p)))
        outcomes.append((float(evidence @ np.where(b == 1, one, zero)), chance))
    bound = tardos.TailBound(p, evidence)
    for s in (0.5, 1.0, 1.5, 2.0, 3.0):
        exact = sum(chance for score, chance in outcomes if score >= s)
        assert bound.probability(s) >= exact
    mean = sum(score * chance for score, chance in outcomes)
    variance = sum(score**2 * chance for score, chance in outcomes)
    assert abs(mean) < 1e-9
    assert abs(variance - 1.0) < 1e-9


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_predicting_the_sealed_part_from_the_rest_costs_a_textured_picture_8_db(
        name: str) -> None:
    """A licence holder that ignores its table and in-paints every sealed coefficient
    gets an unmarked picture, far worse than its marked copy on a textured photograph
    (smooth ones lose less: docs/SEALED.md gives the measured range)."""
    guess = inpainted(container(name))
    image = Image.fromarray(guess[:, :, 0] if guess.shape[2] == 1 else guess)
    quality = psnr(pixels(master(name)), np.asarray(image))
    marked = psnr(pixels(master(name)), pixels(licensed(name, ISSUED[0])))
    assert marked - quality >= 8.0
    assert accuse(png_bytes(image), master(name), KEY, ISSUED).accused == ()
