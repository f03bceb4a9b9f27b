"""The blind detector's statistic: one soft value per coded bit, from the suspect alone.

Each cell's bump-weighted sum is high-passed (the smooth picture cancels, the independent
chips do not), multiplied by its chip sign and by a weight, and summed per coded bit. The
weight is the matched-filter one, amplitude / local residual variance: cells where the mark is
strong relative to what the picture leaves behind count most. Every step is linear in the
image given the weights, and normalising by the residual variance makes the soft values
blind to brightness and contrast changes.

The embedder runs the same statistic on the original to learn, bit by bit, how much the
picture itself already agrees or disagrees with the pattern (host interference), and to
measure the gain of its own pattern, so it can cancel the first (see `embed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from watermark import grid
from watermark.mask import amplitude
from watermark.params import Params
from watermark.pattern import Layout


@dataclass(frozen=True)
class BlindStatistic:
    """Per-cell ingredients of the blind detector on one luminance plane."""

    residual: NDArray[np.float32]
    weight: NDArray[np.float32]
    amplitude: NDArray[np.float32]


def chip_gain(params: Params) -> float:
    """Bump-weighted sum of one chip of unit amplitude: (sum of bump squared) ** 2."""
    return float(params.cell / 2.0) ** 2


def blind_statistic(luma: NDArray[np.float32], params: Params) -> BlindStatistic:
    """High-passed cells, their weights, and the mark amplitude the embedder would use."""
    residual = grid.high_pass(grid.cell_weighted_sums(luma, params.cell))
    amp = amplitude(luma, params)
    floor = np.float32(chip_gain(params) * params.read_noise**2)
    variance = grid.box_mean(np.square(residual), 2) + floor
    return BlindStatistic(residual, (amp / variance).astype(np.float32), amp)


def soft_bits(stat: BlindStatistic, layout: Layout) -> NDArray[np.float64]:
    """One soft value per coded bit, scaled so that noise alone has unit variance."""
    contribution = (stat.residual * stat.weight * layout.chip).astype(np.float64)
    values = layout.per_bit(contribution)
    noise = np.sqrt(layout.per_bit(np.square(stat.residual * stat.weight).astype(np.float64)))
    return np.asarray(values / np.maximum(noise, 1e-12), np.float64)
