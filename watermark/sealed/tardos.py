"""The Tardos code a licence's payload selects, and accusing licences from soft evidence.

Each licence's codeword has bit i set with probability p_i (Tardos 2003; the biases are the
work's secret, see `keyed.biases`). The codeword is not stored: it is drawn again from the
licence's payload with a counter-based generator (splitmix64 of seed + i), so checking a
suspect against a million licences is a million short vector products, no database of
codewords.

Accusation is the symmetric Tardos score (Skoric et al. 2008) on soft evidence: licence j
scores S_j = sum_i y_i U_ji, with U = sqrt((1 - p)/p) where its bit is 1 and
-sqrt(p/(1 - p)) where it is 0. For a licence that did not contribute to the copy, the U_ji
are independent of the evidence y, with mean 0 and variance 1, whatever the copy is: the
score's distribution is known exactly, and `false_accusation_bound` is a Chernoff bound on
it computed for this very evidence vector. The threshold is set so that, summed over every
licence checked, the chance of naming an innocent stays below epsilon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.keyed import codeword_seeds

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)
_CHUNK: Final = 4096
_LAMBDAS: Final = np.geomspace(1e-3, 1e3, 361)


def _splitmix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return np.asarray(z ^ (z >> np.uint64(31)), np.uint64)


def codewords(seeds: NDArray[np.uint64], p: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The codewords (one row per seed) of licences with these seeds, under biases p."""
    counters = (np.arange(1, p.size + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    with np.errstate(over="ignore"):
        z = _splitmix(seeds[:, None] + counters)
    uniform = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.asarray(uniform < p[None, :], np.bool_)


def codeword(key: bytes, payload: int, p: NDArray[np.float64]) -> NDArray[np.bool_]:
    """One licence's codeword."""
    return np.asarray(codewords(codeword_seeds(key, [payload]), p)[0], np.bool_)


def weights(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """U where a codeword's bit is 1, and where it is 0."""
    return np.sqrt((1.0 - p) / p), -np.sqrt(p / (1.0 - p))


def scores(key: bytes, payloads: Sequence[int], p: NDArray[np.float64],
           evidence: NDArray[np.float64]) -> NDArray[np.float64]:
    """Every licence's score against unit-norm evidence, in chunks of bounded memory."""
    one, zero = weights(p)
    base = float(zero @ evidence)
    gain = one - zero
    out = np.empty(len(payloads), dtype=np.float64)
    for start in range(0, len(payloads), _CHUNK):
        chunk = payloads[start : start + _CHUNK]
        bits = codewords(codeword_seeds(key, list(chunk)), p)
        out[start : start + len(chunk)] = base + bits.astype(np.float64) @ (gain * evidence)
    return out


def _log_mgf(p: NDArray[np.float64], evidence: NDArray[np.float64],
             lambdas: NDArray[np.float64]) -> NDArray[np.float64]:
    one, zero = weights(p)
    high = lambdas[:, None] * (evidence * one)[None, :]
    low = lambdas[:, None] * (evidence * zero)[None, :]
    terms = np.logaddexp(np.log(p)[None, :] + high, np.log1p(-p)[None, :] + low)
    return np.asarray(terms.sum(axis=1), np.float64)


class TailBound:
    """The Chernoff bound on an innocent licence's score, for one evidence vector."""

    def __init__(self, p: NDArray[np.float64], evidence: NDArray[np.float64]) -> None:
        self._log_mgf = _log_mgf(p, evidence, _LAMBDAS)

    def log_probability(self, score: float) -> float:
        """log P(an innocent licence scores at least `score`), bounded from above."""
        return float(min(0.0, float(np.min(self._log_mgf - _LAMBDAS * score))))

    def probability(self, score: float) -> float:
        return float(np.exp(self.log_probability(score)))

    def threshold(self, licences: int, epsilon: float) -> float:
        """The least score at which `licences` innocents together stay below `epsilon`."""
        target = np.log(epsilon) - np.log(max(licences, 1))
        low, high = 0.0, 1.0
        while self.log_probability(high) > target:
            high *= 2.0
            if high > 1e6:
                return float("inf")
        for _ in range(60):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if self.log_probability(middle) > target else (low, middle)
        return high
