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


def project(luma: NDArray[np.float32], cell: int) -> NDArray[np.int64]:
    """Each whole cell's coefficient alpha on its bump, in 1/16 grey level."""
    rows, cols = luma.shape[0] // cell, luma.shape[1] // cell
    window = bump(cell).astype(np.float64) / BUMP_UNIT**2
    blocks = luma[: rows * cell, : cols * cell].astype(np.float64).reshape(rows, cell, cols, cell)
    sums = (blocks * window[None, :, None, :]).sum(axis=(1, 3))
    alpha = sums / float(np.square(window).sum())
    return np.asarray(np.rint(alpha * COEFFICIENT_UNIT), np.int64)


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
