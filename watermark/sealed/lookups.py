"""Which table entries each cell adds up: public, from the container's lookup seed."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.params import LOOKUPS


def lookups(seed: bytes, cells: int, table_size: int) -> NDArray[np.intp]:
    """A (cells, LOOKUPS) array of entry indices, the same on every machine (PCG64)."""
    generator = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    return generator.integers(0, table_size, size=(cells, LOOKUPS), dtype=np.int64).astype(np.intp)
