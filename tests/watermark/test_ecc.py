"""The error-correcting code and the keyed check, on their own."""

from __future__ import annotations

import numpy as np

from tests.watermark.conftest import KEY, OTHER_KEY, PAYLOAD
from watermark import ecc, payload


def test_the_code_corrects_heavy_noise() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        bits = rng.integers(0, 2, payload.INFO_BITS).astype(np.uint8)
        noisy = ecc.encode(bits) + rng.normal(0.0, 0.7, payload.CODED_BITS)
        assert np.array_equal(ecc.decode(noisy, payload.INFO_BITS), bits)


def test_the_check_rejects_noise() -> None:
    rng = np.random.default_rng(2)
    for _ in range(500):
        assert not payload.decode(KEY, rng.normal(size=payload.CODED_BITS)).check_ok


def test_the_check_is_keyed() -> None:
    word = payload.codeword(KEY, PAYLOAD)
    assert payload.decode(KEY, word).payload == PAYLOAD
    assert not payload.decode(OTHER_KEY, word).check_ok


def test_the_same_payload_under_two_keys_gives_unrelated_codewords() -> None:
    a, b = payload.codeword(KEY, PAYLOAD), payload.codeword(OTHER_KEY, PAYLOAD)
    assert 0.3 < float(np.mean(a != b)) < 0.7
