"""The keyed time-frequency pattern of one period: what each cell carries, with which sign.

A cell is one band during one chip step. One cell in `SYNC_SHARE` carries the keyed
synchronisation pattern, which the reader finds at any offset and speed; every other cell
carries one of the 282 coded bits, dealt by a keyed permutation so that each bit gets the
same number of cells, scattered over the period's time and bands (a filter or a noisy
stretch costs every bit a little rather than some bits all). Like the image layout, it
comes from a PRNG seeded by SHA-256 of the work's key: without the key it is noise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.audio.params import PERIOD_STEPS, SYNC_SHARE
from watermark.audio.spectrum import BANDS
from watermark.payload import CODED_BITS

_LABEL: Final = b"peermark.watermark.v1.audio-layout"
SYNC: Final = -1


@dataclass(frozen=True)
class AudioLayout:
    """Per cell of one period (steps x bands): the coded bit it carries (or `SYNC`)."""

    bit: NDArray[np.intp]
    chip: NDArray[np.float64]

    @property
    def sync_chips(self) -> NDArray[np.float64]:
        """The synchronisation pattern: the chip on sync cells, zero elsewhere."""
        return np.where(self.bit == SYNC, self.chip, 0.0)

    def signs(self, symbols: NDArray[np.float64]) -> NDArray[np.float64]:
        """The sign each cell's change takes for a codeword's +1/-1 symbols."""
        return np.where(self.bit == SYNC, self.chip, self.chip * symbols[np.maximum(self.bit, 0)])


@lru_cache(maxsize=64)
def audio_layout(key: bytes) -> AudioLayout:
    seed = int.from_bytes(hashlib.sha256(_LABEL + key).digest(), "big")
    rng = np.random.Generator(np.random.PCG64(seed))
    cells = PERIOD_STEPS * BANDS
    order = rng.permutation(cells)
    sync = cells // SYNC_SHARE
    bit = np.empty(cells, np.intp)
    bit[order[:sync]] = SYNC
    bit[order[sync:]] = np.arange(cells - sync) % CODED_BITS
    chip = rng.integers(0, 2, size=cells) * 2.0 - 1.0
    return AudioLayout(bit.reshape(PERIOD_STEPS, BANDS),
                       chip.reshape(PERIOD_STEPS, BANDS).astype(np.float64))
