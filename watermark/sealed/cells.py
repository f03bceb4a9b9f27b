"""The split of a picture into what is sealed and what is not, in exact integers.

The mark lives where the image mark puts it: one smooth half-sine bump per cell of luma
(`watermark.grid`). Each cell's projection onto its bump, alpha, is the sealed coefficient;
the picture minus alpha x bump (in every colour channel alike, as the image mark adds the
same change to R, G and B) is the complement. The complement plus (alpha + mark) x bump is
exactly what the image mark's embedder would write, so a licence holder ends up with what a
marked copy holds and never with alpha alone.

All of it is integer arithmetic: coefficients in 1/16 grey level, the bump rounded to 1/64
per axis, products in 2**-16 grey levels rounded half up by a shift. The agent and the
platform's audit therefore compute the same pixels on any CPU.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.params import BUMP_UNIT, COEFFICIENT_UNIT

_SHIFT: Final = 16  # COEFFICIENT_UNIT x BUMP_UNIT**2 == 2**16
assert COEFFICIENT_UNIT * BUMP_UNIT**2 == 1 << _SHIFT


def bump(cell: int) -> NDArray[np.int64]:
    """The cell's 2-D bump in 1/4096 (the outer product of a half sine in 1/64)."""
    line = np.rint(BUMP_UNIT * np.sin(np.pi * (np.arange(cell) + 0.5) / cell)).astype(np.int64)
    return np.asarray(np.outer(line, line), np.int64)


STRIP_CELLS: Final = 64
"""Cell rows handled at once: bounded memory on a 50-megapixel picture."""


def project(luma: NDArray[np.float32], cell: int) -> NDArray[np.int64]:
    """Each whole cell's coefficient alpha on its bump, in 1/16 grey level."""
    rows, cols = luma.shape[0] // cell, luma.shape[1] // cell
    window = bump(cell).astype(np.float64) / BUMP_UNIT**2
    energy = float(np.square(window).sum())
    alpha = np.empty((rows, cols), dtype=np.int64)
    for top in range(0, rows, STRIP_CELLS):
        count = min(STRIP_CELLS, rows - top)
        strip = luma[top * cell : (top + count) * cell, : cols * cell].astype(np.float64)
        sums = (strip.reshape(count, cell, cols, cell) * window[None, :, None, :]).sum(
            axis=(1, 3))
        alpha[top : top + count] = np.rint(sums / energy * COEFFICIENT_UNIT)
    return alpha


def strips(rows: int, cell: int, height: int) -> list[tuple[int, int, slice]]:
    """(first cell row, cell rows, pixel rows) of each strip; the last strip takes the
    unmarked margin below the whole cells too."""
    out = []
    for top in range(0, max(rows, 1), STRIP_CELLS):
        count = min(STRIP_CELLS, rows - top)
        last = top + STRIP_CELLS >= rows
        out.append((top, count, slice(top * cell, height if last else (top + count) * cell)))
    return out


def spread(coefficients: NDArray[np.int64], cell: int, height: int,
           width: int) -> NDArray[np.int32]:
    """coefficient x bump for every cell, in whole grey levels (zero outside whole cells)."""
    rows, cols = coefficients.shape
    window = bump(cell)
    products = coefficients[:, None, :, None] * window[None, :, None, :]
    body = (products + (1 << (_SHIFT - 1))) >> _SHIFT
    out = np.zeros((height, width), dtype=np.int32)
    out[: rows * cell, : cols * cell] = body.reshape(rows * cell, cols * cell)
    return out
