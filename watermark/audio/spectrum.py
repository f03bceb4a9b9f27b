"""Frames, bands and the short-time spectrum the audio mark lives in.

Analysis and synthesis use the square root of a periodic Hann window at 50% overlap: its
square sums to one, so a modification applied per frame and overlap-added back is exactly
the modification, and a frame with no change adds nothing (the copy equals the master
wherever the mark is zero, digital silence included).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from watermark.audio.params import BAND_HIGH_HZ, BAND_LOW_HZ, BAND_MIN_HZ, BAND_RATIO, HOP_SECONDS

Floats = NDArray[np.float64]


@cache
def band_edges_hz() -> tuple[float, ...]:
    edges = [BAND_LOW_HZ]
    while edges[-1] < BAND_HIGH_HZ:
        edges.append(min(BAND_HIGH_HZ, max(edges[-1] * BAND_RATIO, edges[-1] + BAND_MIN_HZ)))
    return tuple(edges)


BANDS = len(band_edges_hz()) - 1


def frame_length(sample_rate: int) -> int:
    """Two hops of samples at this rate (even, so the hop is a whole number of samples)."""
    return 2 * round(sample_rate * HOP_SECONDS)


@cache
def window(length: int) -> Floats:
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length))


def band_split(length: int, sample_rate: int, scale: float = 1.0) -> NDArray[np.intp]:
    """Bin indices (low, middle, high) of each band's two halves, shape (BANDS, 3).

    ``scale`` stretches the bands, for reading a copy whose speed changed: content at f Hz
    in the master is at f * speed in the copy.
    """
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    edges = np.searchsorted(freqs, np.asarray(band_edges_hz()) * scale)
    middle = (edges[:-1] + edges[1:]) // 2
    return np.stack([edges[:-1], middle, edges[1:]], axis=1).astype(np.intp)


def power_prefix(mono: Floats, starts: NDArray[np.intp], length: int
                 ) -> tuple[Floats, NDArray[np.bool_]]:
    """Per frame, the running sum of spectral power over frequency (so any band's power is
    one subtraction), and which frames lie wholly inside the signal."""
    inside = (starts >= 0) & (starts + length <= mono.size)
    frames = np.zeros((starts.size, length))
    frames[inside] = mono[starts[inside, None] + np.arange(length)[None, :]]
    power = np.abs(np.fft.rfft(frames * window(length), axis=1)) ** 2
    prefix = np.zeros((starts.size, power.shape[1] + 1))
    np.cumsum(power, axis=1, out=prefix[:, 1:])
    return prefix, inside


def half_band_power(prefix: Floats, split: NDArray[np.intp]) -> tuple[Floats, Floats]:
    """Power of each band's lower and upper half, per frame."""
    low = prefix[:, split[:, 1]] - prefix[:, split[:, 0]]
    high = prefix[:, split[:, 2]] - prefix[:, split[:, 1]]
    return low, high


def add_modification(signal: Floats, gains: Floats, length: int) -> Floats:
    """``signal`` plus the overlap-added change of multiplying frame k's spectrum by
    ``1 + gains[k]``; frames past the gains' end are unchanged."""
    hop = length // 2
    count = gains.shape[0]
    starts = np.arange(count) * hop
    win = window(length)
    frames = signal[starts[:, None] + np.arange(length)[None, :]] * win
    change = np.fft.irfft(np.fft.rfft(frames, axis=1) * gains, n=length, axis=1) * win
    added = np.zeros((count + 1) * hop)
    added[: count * hop] += change[:, :hop].ravel()
    added[hop:] += change[:, hop:].ravel()
    out = signal.copy()
    end = min(signal.size, added.size)
    out[:end] += added[:end]
    return out
