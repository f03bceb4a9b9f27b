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

CHUNK_FRAMES = 128
"""Frames transformed at once: enough to amortise each call, few enough to stay in cache."""


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


def band_top(length: int, sample_rate: int, scale: float = 1.0) -> int:
    """The first bin above every band (stretched by ``scale``): a reader needs none past it."""
    return int(band_split(length, sample_rate, scale)[-1, 2])


def _frame_rows(signal: NDArray[np.floating], length: int) -> NDArray[np.floating]:
    """Every ``length``-sample stretch of ``signal`` as a row of a strided view (no copy)."""
    return np.lib.stride_tricks.sliding_window_view(signal, length)


def power_prefix(mono: Floats, starts: NDArray[np.intp], length: int, *,
                 bins: int | None = None, single: bool = False
                 ) -> tuple[Floats, NDArray[np.bool_]]:
    """Per frame, the running sum of spectral power over frequency (so any band's power is
    one subtraction), and which frames lie wholly inside the signal. Only the first
    ``bins`` bins are summed if given (the bands end far below the Nyquist frequency);
    ``single`` computes the spectra in float32, which halves the work and is ample for a
    reader comparing levels that differ by tenths of a dB."""
    count = length // 2 + 1 if bins is None else bins
    inside = (starts >= 0) & (starts + length <= mono.size)
    prefix = np.zeros((starts.size, count + 1))
    rows = np.flatnonzero(inside)
    if rows.size == 0:
        return prefix, inside
    kind = np.float32 if single else np.float64
    frames = _frame_rows(mono.astype(kind, copy=False), length)
    win = window(length).astype(kind)
    for first in range(0, rows.size, CHUNK_FRAMES):
        chosen = rows[first: first + CHUNK_FRAMES]
        windowed = np.multiply(frames[starts[chosen]], win)
        power = np.abs(np.fft.rfft(windowed, axis=1)[:, :count]) ** 2
        prefix[chosen, 1:] = np.cumsum(power, axis=1, dtype=np.float64)
    return prefix, inside


def half_band_power(prefix: Floats, split: NDArray[np.intp]) -> tuple[Floats, Floats]:
    """Power of each band's lower and upper half, per frame."""
    edges = np.take(prefix, split.ravel(), axis=1)
    return edges[:, 1::3] - edges[:, 0::3], edges[:, 2::3] - edges[:, 1::3]


def frame_spectra(signal: Floats, frames: int, length: int, bins: slice) -> NDArray[np.complex128]:
    """The spectra, on ``bins`` only, of the first ``frames`` windowed frames (hop
    ``length // 2``): what `add_modification` changes, computed once for every attempt."""
    rows = _frame_rows(signal, length)[: frames * (length // 2): length // 2]
    win = window(length)
    out = np.empty((frames, bins.stop - bins.start), np.complex128)
    for first in range(0, frames, CHUNK_FRAMES):
        chunk = rows[first: first + CHUNK_FRAMES] * win
        out[first: first + CHUNK_FRAMES] = np.fft.rfft(chunk, axis=1)[:, bins]
    return out


def add_modification(signal: Floats, spectra: NDArray[np.complex128], gains: Floats,
                     bins: slice, length: int) -> Floats:
    """``signal`` plus the overlap-added change of multiplying frame k's spectrum by
    ``1 + gains[k]`` on ``bins`` (``spectra`` from `frame_spectra`; 1 elsewhere); frames
    past the gains' end are unchanged."""
    hop = length // 2
    count = gains.shape[0]
    win = window(length)
    added = np.zeros((count + 1) * hop)
    spectrum = np.zeros((CHUNK_FRAMES, length // 2 + 1), np.complex128)  # 0 off ``bins``
    for first in range(0, count, CHUNK_FRAMES):
        last = min(count, first + CHUNK_FRAMES)
        np.multiply(spectra[first:last], gains[first:last], out=spectrum[: last - first, bins])
        change = np.fft.irfft(spectrum[: last - first], n=length, axis=1)
        change *= win
        added[first * hop: last * hop].reshape(-1, hop)[:] += change[:, :hop]
        added[(first + 1) * hop: (last + 1) * hop].reshape(-1, hop)[:] += change[:, hop:]
    out = np.empty_like(signal)
    end = min(signal.size, added.size)
    np.add(signal[:end], added[:end], out=out[:end])
    out[end:] = signal[end:]
    return out
