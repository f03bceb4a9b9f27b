"""Where a recording's sealed mark lives: windowed cosines, one per band of each frame.

The recording is cut into frames of 2048 samples (46 ms at 44.1 kHz; 1024 below 32 kHz).
In each frame, every third frequency bin between 300 Hz and 7 kHz carries one atom: a
cosine at that bin under a sine window, zero at the frame's edges, so neighbouring frames'
marks meet smoothly and no click marks a frame boundary. The band is the audio mark's
(above the bass that holds a mix's energy, below what MP3 at low rates and a low-pass
keep); three bins apart, the windowed atoms hardly overlap. A frame's atom coefficient is
the projection of the mix (the channels' mean) onto it, as a cell's bump coefficient is
for a picture.

Like the image cells, it is integer arithmetic on the agent's side: atoms in 2**-14,
coefficients in 1/16 of a sample step, products shifted down by 18 bits, rounded half up.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.params import COEFFICIENT_UNIT

LOW_HZ: Final = 300.0
HIGH_HZ: Final = 7000.0
SPACING: Final = 3
ATOM_UNIT: Final = 1 << 14
_SHIFT: Final = 18
assert COEFFICIENT_UNIT * ATOM_UNIT == 1 << _SHIFT
COEFFICIENT_LIMIT: Final = 1 << 40
"""Coefficients are clipped here before they are spread: a table that does not cancel the
noise (a wrong one) makes a loud copy, never an overflow."""
STRIP_FRAMES: Final = 512


def frame_length(rate: int) -> int:
    return 2048 if rate >= 32_000 else 1024


def bins(rate: int) -> NDArray[np.int64]:
    """The frequency bins that carry atoms."""
    length = frame_length(rate)
    low = int(np.ceil(LOW_HZ * length / rate))
    high = min(int(HIGH_HZ * length / rate), length // 2 - 1)
    return np.arange(low, high + 1, SPACING, dtype=np.int64)


@cache
def atoms(rate: int) -> NDArray[np.int64]:
    """(atoms, frame length) integer atoms in 2**-14."""
    length = frame_length(rate)
    n = np.arange(length, dtype=np.float64) + 0.5
    window = np.sin(np.pi * n / length)
    waves = np.cos(2.0 * np.pi * bins(rate)[:, None].astype(np.float64) * n[None, :] / length)
    shaped = np.rint(ATOM_UNIT * window[None, :] * waves).astype(np.int64)
    shaped.setflags(write=False)
    return np.asarray(shaped, np.int64)


def project(frames: NDArray[np.float64], rate: int) -> NDArray[np.int64]:
    """Each frame's coefficient on each atom, in 1/16 sample step."""
    shaped = atoms(rate).astype(np.float64) / ATOM_UNIT
    energy = np.square(shaped).sum(axis=1)
    return np.asarray(np.rint(frames @ shaped.T / energy * COEFFICIENT_UNIT), np.int64)


def spread(coefficients: NDArray[np.int64], rate: int) -> NDArray[np.int64]:
    """sum of coefficient x atom for every frame, in whole sample steps, (frames, length)."""
    shaped = atoms(rate)
    clipped = np.clip(coefficients, -COEFFICIENT_LIMIT, COEFFICIENT_LIMIT)
    out = np.empty((clipped.shape[0], shaped.shape[1]), dtype=np.int64)
    for top in range(0, clipped.shape[0], STRIP_FRAMES):
        block = clipped[top : top + STRIP_FRAMES]
        out[top : top + len(block)] = (block @ shaped + (1 << (_SHIFT - 1))) >> _SHIFT
    return out
