"""Which table entries each cell adds up: public, from the container's lookup seed."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.params import LOOKUPS


def lookups(seed: bytes, cells: int, table_size: int) -> NDArray[np.intp]:
    """A (cells, LOOKUPS) array of entry indices, the same on every machine and numpy.

    The agent and the platform must agree on these for as long as a work is sold, so they
    come from the PCG64 bit stream itself (which numpy keeps stable), not from a
    distribution method (which it may change): the top bits of each 64-bit word, the
    table size being a power of two."""
    raw = np.random.PCG64(int.from_bytes(seed, "big")).random_raw(cells * LOOKUPS)
    shift = np.uint64(64 - (table_size.bit_length() - 1))
    return (np.asarray(raw, np.uint64) >> shift).astype(np.intp).reshape(cells, LOOKUPS)
