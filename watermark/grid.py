"""The cell grid the mark lives on, and the few array operations done on it.

The image is cut into square cells of `cell` pixels. Each cell carries one chip of the
spread-spectrum pattern, shaped by a separable half-sine bump that is near zero at the cell
border: neighbouring chips of opposite sign then meet smoothly, so the mark has no block
edges, and most of its energy sits below a quarter cycle per pixel, where JPEG and halving
the image leave it alone. Reading a cell back is a bump-weighted sum (a matched filter).
All of it is reshapes and matrix products: no Python loop touches pixels or cells.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]


def bump(cell: int) -> Array:
    """Half-sine window over one cell: sum of squares is about cell / 2.

    Rounded to multiples of 1/4096 so that the table, and every product with it, is the
    same on every CPU (np.sin may differ in the last bit between SIMD implementations).
    """
    exact = np.sin(np.pi * (np.arange(cell, dtype=np.float64) + 0.5) / cell)
    return (np.round(exact * 4096.0) / 4096.0).astype(np.float32)


def cell_shape(height: int, width: int, cell: int) -> tuple[int, int]:
    """Rows and columns of whole cells; the remainder strip at the bottom and right is unmarked."""
    return height // cell, width // cell


def _blocks(plane: Array, cell: int) -> Array:
    rows, cols = cell_shape(plane.shape[0], plane.shape[1], cell)
    return plane[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell)


def cell_weighted_sums(plane: Array, cell: int) -> Array:
    """Bump-weighted sum of each cell: the matched filter for one chip.

    Plain multiply-and-sum rather than a matrix product: BLAS kernels differ between CPUs
    in the order they add, and the embedder's output must be the same on every machine.
    """
    w = bump(cell)
    across = (_blocks(plane, cell) * w[None, None, None, :]).sum(axis=3, dtype=np.float32)
    return np.asarray((across * w[None, :, None]).sum(axis=1, dtype=np.float32), np.float32)


def cell_means_and_variances(plane: Array, cell: int) -> tuple[Array, Array]:
    """Plain mean and within-cell variance of each cell (for the texture mask)."""
    rows, cols = cell_shape(plane.shape[0], plane.shape[1], cell)
    body = plane[: rows * cell, : cols * cell]

    def cell_sums(values: Array) -> Array:
        across = values.reshape(rows * cell, cols, cell).sum(axis=2, dtype=np.float32)
        return np.asarray(across.reshape(rows, cell, cols).sum(axis=1), np.float32)

    scale = np.float32(1.0 / (cell * cell))
    mean = cell_sums(body) * scale
    square = cell_sums(np.square(body)) * scale
    return mean, np.maximum(square - np.square(mean), np.float32(0.0))


def spread(cells: Array, cell: int, height: int, width: int) -> Array:
    """Full-size plane whose cells hold `cells[i, j]` times the 2-D bump (zero in the margin)."""
    rows, cols = cells.shape
    w = bump(cell)
    window = np.outer(w, w)
    body = (cells[:, None, :, None] * window[None, :, None, :]).reshape(rows * cell, cols * cell)
    if body.shape == (height, width):
        return body
    out = np.zeros((height, width), dtype=np.float32)
    out[: rows * cell, : cols * cell] = body
    return out


def box_mean(a: Array, radius: int) -> Array:
    """Mean over a (2r+1)^2 window, edges replicated; on the small cell grid only.

    Summed as shifted slices, not as differences of a running (integral-image) sum: the
    differences of large running sums cancel, and a window of zeros could come out a
    hair below zero, whose square root is NaN. Sums of shifted non-negative values stay
    non-negative, and for the 3x3 and 5x5 windows used here they cost no more.
    """
    size = 2 * radius + 1
    rows, cols = a.shape
    padded = np.pad(a.astype(np.float64), radius, mode="edge")
    down = padded[0:rows].copy()
    for shift in range(1, size):
        down += padded[shift : shift + rows]
    total = down[:, 0:cols].copy()
    for shift in range(1, size):
        total += down[:, shift : shift + cols]
    return (total / (size * size)).astype(np.float32)


def high_pass(cells: Array) -> Array:
    """Each cell minus the mean of its eight neighbours: removes the smooth host image.

    The chips of neighbouring cells are independent, so the mark passes with gain one while
    gradients and flat regions of the picture cancel.
    """
    neighbours = (box_mean(cells, 1) * 9.0 - cells) / 8.0
    return np.asarray(cells - neighbours, np.float32)
