"""The keyed layout: which coded bit each cell carries, and with which sign.

Everything comes from a PRNG seeded by SHA-256 of the work's key, so a reader without the
key sees noise, and two keys give independent patterns. Cells are dealt to coded bits by a
keyed permutation, so every bit gets the same number of cells, scattered over the whole
picture: a crop or a damaged region costs every bit a little rather than some bits all.
The layout depends only on the key and the image's size in cells (the master's, for an
informed read), so the reader rebuilds it exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

_SEED_LABEL: Final = b"peermark.watermark.v1.pattern"


@dataclass(frozen=True)
class Layout:
    """Per-cell bit index and chip sign for one key and one grid size."""

    rows: int
    cols: int
    n_bits: int
    bit: NDArray[np.intp]
    chip: NDArray[np.float32]

    def per_bit(self, values: NDArray[np.float32] | NDArray[np.float64]) -> NDArray[np.float64]:
        """Sum a per-cell array into one value per coded bit."""
        sums = np.bincount(self.bit.ravel(), weights=values.ravel(), minlength=self.n_bits)
        return np.asarray(sums, np.float64)


def layout(key: bytes, rows: int, cols: int, n_bits: int) -> Layout:
    """The keyed layout of a rows x cols grid carrying `n_bits` coded bits."""
    seed = int.from_bytes(hashlib.sha256(_SEED_LABEL + key).digest(), "big")
    rng = np.random.Generator(np.random.PCG64(seed))
    n_cells = rows * cols
    bit = (rng.permutation(n_cells) % n_bits).reshape(rows, cols)
    chip = (rng.integers(0, 2, size=(rows, cols), dtype=np.int8) * 2 - 1).astype(np.float32)
    return Layout(rows, cols, n_bits, bit.astype(np.intp), chip)
