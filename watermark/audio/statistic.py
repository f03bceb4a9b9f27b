"""The reader's statistic: per cell, how much the lower half of a band rose against the upper.

The mark raises one half of a band and lowers the other (which half, the cell's sign says),
so the reader looks at the difference of the halves' log power. What the music does to
both halves at once, a drum hit, a crescendo, a fade, a change of gain, cancels in that
difference; what it holds for a while, a note sitting in one half, is removed by
subtracting the difference's moving average over nearby steps. Each cell is then weighted
by the inverse variance of its neighbourhood: busy passages count less. Everything is
blind: it needs the suspect copy alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.audio.layout import AudioLayout
from watermark.audio.params import (
    HIGHPASS_STEPS,
    PERIOD_STEPS,
    STEP_HOPS,
    SYNC_SHARE,
    WEIGHT_BANDS,
    WEIGHT_STEPS,
)
from watermark.audio.spectrum import BANDS, band_split, half_band_power
from watermark.payload import CODED_BITS

Floats = NDArray[np.float64]

_FLOOR = 1e-9  # power below this is silence: both halves' logs sit at the same floor
_VARIANCE_FLOOR = 1e-3


def _box_mean(values: Floats, steps: int, bands: int) -> Floats:
    """Mean over a (2 steps + 1) x (2 bands + 1) box, edges repeated (summed-area table)."""
    padded = np.pad(values, ((steps, steps), (bands, bands)), mode="edge")
    table = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    np.cumsum(np.cumsum(padded, axis=0), axis=1, out=table[1:, 1:])
    height, width = 2 * steps + 1, 2 * bands + 1
    total = (table[height:, width:] - table[:-height, width:] - table[height:, :-width]
             + table[:-height, :-width])
    return total / (height * width)


def whitened(difference: Floats, inside: NDArray[np.bool_], *, highpass: bool = True
             ) -> Floats:
    """High-passed and variance-weighted cells; cells outside the signal are zero. An
    informed read, which has subtracted the master already, skips the high-pass."""
    residual = difference - _box_mean(difference, HIGHPASS_STEPS, 0) if highpass else difference
    weighted = residual / (_box_mean(residual**2, WEIGHT_STEPS, WEIGHT_BANDS) + _VARIANCE_FLOOR)
    return weighted * inside[:, None]


def step_difference(low: Floats, high: Floats) -> Floats:
    """Per step and band, log power of the lower half minus the upper, from per-hop powers."""
    steps = low.shape[0] // STEP_HOPS
    low = low[: steps * STEP_HOPS].reshape(steps, STEP_HOPS, BANDS).sum(axis=1)
    high = high[: steps * STEP_HOPS].reshape(steps, STEP_HOPS, BANDS).sum(axis=1)
    return np.asarray(np.log(low + _FLOOR) - np.log(high + _FLOOR), np.float64)


def read_difference(prefix: Floats, inside: NDArray[np.bool_], *, length: int,
                    sample_rate: int, per_hop: int, speed: float, phase: int
                    ) -> tuple[Floats, NDArray[np.bool_]]:
    """The cells' half-band differences of a copy analysed at a fine hop (``per_hop``
    frames per master hop), read where the master's hops fall in it at ``speed``, from
    ``phase`` fine frames in; and which steps lie wholly inside the copy. Choosing frames
    from one fine analysis keeps a speed search cheap."""
    frames = prefix.shape[0]
    steps = max(0, int((frames - 1 - phase) * speed / (per_hop * STEP_HOPS)))
    hops = np.arange(steps * STEP_HOPS)
    chosen = np.minimum(np.round((phase + per_hop * hops) / speed).astype(np.intp), frames - 1)
    low, high = half_band_power(prefix[chosen], band_split(length, sample_rate, speed))
    steady = inside[chosen].reshape(steps, STEP_HOPS).all(axis=1)
    return step_difference(low, high), steady


def sync_scores(cells: Floats, layout: AudioLayout) -> Floats:
    """For each offset into the period, the normalised correlation of the cells with the
    sync pattern (about N(0, 1) where there is no mark). The cells are folded onto one
    period first, so every offset costs one FFT product whatever the copy's length."""
    folded = np.zeros((PERIOD_STEPS, BANDS))
    np.add.at(folded, np.arange(cells.shape[0]) % PERIOD_STEPS, cells)
    pattern = layout.sync_chips
    spectrum = np.conj(np.fft.rfft(folded, axis=0)) * np.fft.rfft(pattern, axis=0)
    scores = np.fft.irfft(spectrum, n=PERIOD_STEPS, axis=0).sum(axis=1)
    noise = float(np.sqrt(np.square(cells).sum() / SYNC_SHARE))
    return np.asarray(scores / max(noise, 1e-12), np.float64)


def soft_values(cells: Floats, layout: AudioLayout, offset: int) -> Floats:
    """One soft value per coded bit, scaled so that noise alone has unit variance; the copy's
    first cell row is the period's row ``offset``."""
    rows = (np.arange(cells.shape[0]) + offset) % PERIOD_STEPS
    bit, chip = layout.bit[rows], layout.chip[rows]
    data = bit >= 0
    sums = np.bincount(bit[data], weights=(cells * chip)[data], minlength=CODED_BITS)
    noise = np.sqrt(np.bincount(bit[data], weights=np.square(cells)[data], minlength=CODED_BITS))
    return np.asarray(sums / np.maximum(noise, 1e-12), np.float64)
