"""Detect, do not guess: no payload from unmarked images or under the wrong key."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.watermark.conftest import KEY, OTHER_KEY, PAYLOAD, Sample
from watermark import embed, extract


def test_it_finds_no_mark_in_unmarked_images(samples: list[Sample]) -> None:
    rng = np.random.default_rng(11)
    for sample in samples:
        for _ in range(8):
            result = extract(sample.original, rng.bytes(32))
            assert not result.found
            assert result.payload is None


def test_it_finds_no_mark_under_the_wrong_key(samples: list[Sample]) -> None:
    rng = np.random.default_rng(12)
    for sample in samples:
        for _ in range(8):
            assert not extract(sample.marked, rng.bytes(32)).found


def test_an_informed_read_of_an_unmarked_copy_finds_nothing(samples: list[Sample]) -> None:
    for sample in samples[:3]:
        result = extract(sample.original, sample.key, reference=sample.original)
        assert not result.found
        assert result.informed


def test_it_finds_no_mark_in_noise() -> None:
    rng = np.random.default_rng(13)
    for _ in range(10):
        noise = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "RGB")
        assert not extract(noise, KEY).found


def test_different_keys_give_independent_patterns(photo: Image.Image) -> None:
    base = np.asarray(photo, dtype=np.float64)
    a = np.asarray(embed(photo, KEY, PAYLOAD), dtype=np.float64) - base
    b = np.asarray(embed(photo, OTHER_KEY, PAYLOAD), dtype=np.float64) - base
    correlation = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    assert abs(correlation) < 0.05


def test_two_keys_marks_can_coexist(photo: Image.Image) -> None:
    both = embed(embed(photo, KEY, 1), OTHER_KEY, 2)
    assert extract(both, KEY).payload == 1
    assert extract(both, OTHER_KEY).payload == 2


def test_a_read_reports_its_confidence(samples: list[Sample]) -> None:
    sample = samples[0]
    result = extract(sample.marked, sample.key)
    assert result.found
    assert result.bit_errors == 0
    assert result.score > 0.9
