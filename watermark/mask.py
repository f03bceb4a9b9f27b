"""Perceptual masking: how much mark each cell gets, in grey levels.

Noise is hard to see where the picture is already busy and easy to see on a smooth sky or a
gradient. Two curves, both functions of the local standard deviation of luminance `sigma`
(within-cell variance averaged over the 3x3 cells around):

* the visibility limit, `flat_amplitude * sqrt(sigma**2 + floor**2) / floor`: a faint mark in
  flat regions, growing with texture as contrast masking allows (it never caps);
* the allocation shape, the same curve capped at `texture_cap`: where the budget goes. Very
  busy cells hide a mark well but also drown it (the reader sees their texture as noise), so
  past the cap more texture earns no more energy.

The amplitude is the allocation shape scaled to meet the PSNR budget, cut at the visibility
limit. The embedder and both readers compute it the same way; the informed reader from the
master, so it gets exactly what the embedder used.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark import grid
from watermark.params import MAX_CELL, MIN_CELL, Params


def texture(luma: NDArray[np.float32], params: Params) -> NDArray[np.float32]:
    """Local standard deviation of luminance per cell."""
    _, variance = grid.cell_means_and_variances(luma, params.cell)
    # Never below zero, so never a NaN root (box_mean of non-negatives already is not).
    return np.sqrt(np.maximum(grid.box_mean(variance, 1), np.float32(0.0)))


def _energy_per_cell(params: Params) -> float:
    # Pixel energy of one cell of unit amplitude: (sum of the bump squared) ** 2.
    return float(params.cell / 2.0) ** 2


def amplitude(luma: NDArray[np.float32], params: Params) -> NDArray[np.float32]:
    """Peak mark amplitude of every cell, meeting the PSNR budget where visibility allows."""
    sigma = texture(luma, params).astype(np.float64)
    relative = np.sqrt(np.square(sigma) + params.texture_floor**2) / params.texture_floor
    limit = params.flat_amplitude * relative
    shape = np.minimum(relative, params.texture_cap / params.texture_floor) ** params.texture_power
    mse = 255.0**2 / 10.0 ** (params.psnr / 10.0)
    budget = mse * luma.size / _energy_per_cell(params)

    def energy(scale: float) -> float:
        return float(np.square(np.minimum(scale * shape, limit)).sum())

    low, high = 0.0, float((limit / shape).max())
    if energy(high) <= budget:
        return limit.astype(np.float32)
    for _ in range(40):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if energy(middle) < budget else (low, middle)
    return np.minimum(low * shape, limit).astype(np.float32)


def choose_cell(luma: NDArray[np.float32], params: Params) -> int:
    """The cell side the embedder uses for this picture (the readers recompute it).

    By size (`Params.size_cell`), except for smooth pictures, with neither texture nor
    edges anywhere (90% of cells below a standard deviation of 6, under 1% above the
    texture cap): those get the largest cells. Their mark sits in flat regions, where JPEG
    after a downscale erases fine chips but keeps coarse ones, and with nothing in the
    picture to interfere, a blind read loses little by having fewer, larger chips.
    """
    if params.cell:
        return params.cell
    sigma = texture(luma, params.with_cell(MIN_CELL))
    smooth = float(np.percentile(sigma, 90)) < 6.0 and float(
        np.mean(sigma > params.texture_cap)) < 0.01
    return MAX_CELL if smooth else params.size_cell(luma.shape[0], luma.shape[1])


def candidate_cells(luma: NDArray[np.float32], params: Params) -> list[int]:
    """Cell sides a blind reader tries, the likeliest first.

    The embedder chose either the size-based side or the largest one; the copy has the
    marked file's size, but an attack may have changed the statistics that decided between
    the two, so both are tried.
    """
    if params.cell:
        return [params.cell]
    first = choose_cell(luma, params)
    other = {params.size_cell(luma.shape[0], luma.shape[1]), MAX_CELL} - {first}
    return [first, *other]
