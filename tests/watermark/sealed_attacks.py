"""Attacks a licence holder can make on sealed delivery with what its device holds.

The strongest one we know ignores the personal table: it predicts every sealed cell
coefficient from the complement around it (the part of the picture that carries no mark)
by making the picture as smooth as it can across each cell, and writes that. The copy
then carries no mark at all; what it costs is how far the prediction misses. The tests
and the benchmark use it to state that cost (docs/SEALED.md, "What it guarantees").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.sealed import cells
from watermark.sealed.container import read_container
from watermark.sealed.params import BUMP_UNIT


def _roughness_gradient(plane: NDArray[np.float64]) -> NDArray[np.float64]:
    """d/dY of the sum of squared differences between 4-neighbours."""
    out = np.zeros_like(plane)
    across = np.diff(plane, axis=1)
    down = np.diff(plane, axis=0)
    out[:, :-1] -= across
    out[:, 1:] += across
    out[:-1, :] -= down
    out[1:, :] += down
    return out


def inpainted(container: bytes, iterations: int = 200) -> NDArray[np.uint8]:
    """The pixels of the smoothest picture the complement allows: no table used."""
    parts = read_container(container)
    info = parts.info
    cell, rows, cols = info.cell, info.rows, info.cols
    complement = parts.complement.astype(np.float64)
    weights = np.array([0.299, 0.587, 0.114]) if info.colour == 3 else np.ones(1)
    luma = complement @ weights
    window = cells.bump(cell).astype(np.float64) / BUMP_UNIT**2
    body = (slice(0, rows * cell), slice(0, cols * cell))
    pattern = np.tile(window, (rows, cols))
    # curvature of the roughness along one cell's bump: a safe Jacobi step
    curvature = float(np.square(np.diff(window, axis=0)).sum()
                      + np.square(np.diff(window, axis=1)).sum()
                      + 2 * np.square(window[0]).sum() + 2 * np.square(window[:, 0]).sum())
    alpha = np.zeros((rows, cols))
    for _ in range(iterations):
        plane = luma.copy()
        plane[body] += np.kron(alpha, np.ones((cell, cell))) * pattern
        gradient = (_roughness_gradient(plane)[body] * pattern).reshape(
            rows, cell, cols, cell).sum(axis=(1, 3))
        alpha -= 0.9 * gradient / curvature
    added = np.zeros(luma.shape)
    added[body] = np.kron(alpha, np.ones((cell, cell))) * pattern
    colour = np.clip(np.rint(complement + added[:, :, None]), 0, 255).astype(np.uint8)
    return np.concatenate([colour, parts.extra], axis=2)
