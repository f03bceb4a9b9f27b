"""Shared fixtures: keys, payloads and a small marked corpus built once per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from tests.watermark import corpus
from watermark import embed

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PAYLOAD = 0xDEADBEEF_CAFEF00D

# Small images (0.11 to 0.2 megapixels) keep the suite fast; the benchmark uses larger ones.
SIZES = [(400, 300), (480, 320), (512, 384), (448, 336), (384, 288), (512, 352)]


@dataclass(frozen=True)
class Sample:
    name: str
    original: Image.Image
    marked: Image.Image
    key: bytes
    payload: int


@pytest.fixture(scope="session")
def samples() -> list[Sample]:
    rng = np.random.default_rng(20261126)
    out = []
    for index, name in enumerate(corpus.GENERATORS):
        width, height = SIZES[index]
        original = corpus.make(name, width, height, seed=index)
        key = rng.bytes(32)
        payload = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        out.append(Sample(name, original, embed(original, key, payload), key, payload))
    return out


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    return corpus.make("landscape", 320, 256, seed=7)
