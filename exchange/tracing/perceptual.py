"""Perceptual fingerprints, to find which work a copy is of: images and audio.

A leaked copy is no longer byte-identical to anything the platform holds: it carries a
buyer's watermark and has usually been recompressed, resized or cropped (a picture) or
re-encoded, turned down and cut to an excerpt (a recording). Its coarse structure
survives, and that is what these fingerprints keep. For images, a 64-bit hash: the signs
of the lowest spatial frequencies of a 32 x 32 greyscale thumbnail against their median;
copies of one picture land a few bits apart, different pictures about 32. For audio, 32
bits per 23 ms frame (below). They only order the candidates: the keyed watermark read
that follows is what decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

_SIDE = 32
_KEEP = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return np.asarray(matrix, dtype=np.float64)


_DCT = _dct_matrix(_SIDE)


def perceptual_hash(image: Image.Image) -> int:
    """The image's 64-bit DCT hash, as an unsigned integer."""
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:_KEEP, :_KEEP].ravel()
    # The DC term is the mean brightness: left out of the median so that a brighter copy
    # hashes like its original.
    bits = low > np.median(low[1:])
    bits[0] = False
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hash_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()


# --- Audio --------------------------------------------------------------------------------
#
# The same idea for sound (Haitsma and Kalker's fingerprint): the mix's coarse spectral
# shape survives re-encoding, gain and excerpting. Each frame gives 32 bits, the signs of
# how the energy difference of two neighbouring bands changes from the frame before.
# A gain cancels (every band scales alike), a codec's quantisation noise moves few signs,
# and an excerpt is a run of the master's frames: it is found by sliding it along the
# master's bits and counting the bits that differ (by FFT, at every offset at once).

#: a fingerprint's layout; a stored one with another version is made again
AUDIO_PRINT_VERSION = 1
_FRAME_SECONDS = 8192 / 44100  # 186 ms: long frames, so a shift of half a hop moves little
_HOP_SECONDS = _FRAME_SECONDS / 8  # 23 ms
_BAND_EDGES_HZ = np.geomspace(300.0, 3000.0, 34)  # 33 bands, 32 bits per frame
#: frames quieter than this carry no bits: digital silence would match any other silence
_QUIET_POWER = 10 ** (-70 / 10)
_CHUNK_FRAMES = 256
#: the rate the audio is brought down to first (by a whole factor): enough for 3.1 kHz
_LOW_RATE = 11025
_LOW_BLOCK = 1 << 18
#: speed changes a suspect is tried at: within 0.25% of the truth, between -2% and +2%
SPEEDS = tuple(1.0 + 0.005 * step for step in range(-4, 5))
#: a suspect's part that is fingerprinted; the watermark read takes all of it
SUSPECT_SECONDS = 60.0
#: loud frames the copy and the master must share to be compared at all
MIN_MATCH_SECONDS = 5.0
#: how much of the copy (or of the master, if it is the shorter) the two must share
_MIN_SHARE = 0.9


@dataclass(frozen=True)
class AudioPrint:
    """32 bits per 23 ms frame, and which frames carry any (not silence); ``speed`` is
    the speed change a suspect's print undid (a master's is 1)."""

    bits: NDArray[np.uint32]
    loud: NDArray[np.bool_]
    speed: float = 1.0

    @property
    def seconds(self) -> float:
        return float(self.bits.size * _HOP_SECONDS)

    def to_bytes(self) -> bytes:
        count = self.bits.size
        return (bytes([AUDIO_PRINT_VERSION]) + count.to_bytes(4, "big")
                + self.bits.astype(">u4").tobytes() + np.packbits(self.loud).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> AudioPrint | None:
        """The stored fingerprint, or None if it was made by another version."""
        if len(data) < 5 or data[0] != AUDIO_PRINT_VERSION:
            return None
        count = int.from_bytes(data[1:5], "big")
        bits = np.frombuffer(data, dtype=">u4", count=count, offset=5).astype(np.uint32)
        loud = np.unpackbits(np.frombuffer(data, np.uint8, offset=5 + 4 * count),
                             count=count).astype(bool)
        return cls(bits, loud)


@dataclass(frozen=True)
class AudioMatch:
    """Where the copy fits the master best, and how well."""

    bit_error_rate: float
    master_seconds: float
    """Where in the master the copy starts (negative: the copy starts before it)."""
    overlap_seconds: float
    speed: float


def audio_print(samples: np.ndarray, sample_rate: int, *, speed: float = 1.0) -> AudioPrint:
    """The fingerprint of ``samples`` ((frames, channels) or mono, floats or integers).

    ``speed``: what the copy was sped up by (1.01: it plays 1% faster, its pitch 1%
    higher), so that its frames and bands are those of the master's time and pitch.
    """
    return _print(*_low_mono(samples, sample_rate), speed)


def suspect_prints(samples: np.ndarray, sample_rate: int) -> list[AudioPrint]:
    """A suspect's prints at each speed change it may have had (a copy played 1% fast
    lands a third of its bits from its master, undone to within 0.25% as close as an
    unchanged one); of its first `SUSPECT_SECONDS`, which place it as well as the whole."""
    low, rate = _low_mono(samples[: int(SUSPECT_SECONDS * sample_rate)], sample_rate)
    return [_print(low, rate, speed) for speed in SPEEDS]


def _low_mono(samples: np.ndarray, sample_rate: int) -> tuple[NDArray[np.float32], float]:
    """The channels' mean, low-passed and decimated to about 11 kHz (the bands end below
    3.1 kHz even at +2%), a block at a time so a long master is never copied whole."""
    audio = np.asarray(samples)
    if audio.ndim == 1:
        audio = audio[:, None]
    scale = (1.0 / (float(np.iinfo(audio.dtype).max) + 1.0)
             if np.issubdtype(audio.dtype, np.integer) else 1.0)
    step = max(1, int(sample_rate // _LOW_RATE))
    # a windowed sinc cutting at the new rate's Nyquist: what folds back below 3.1 kHz
    # comes from above 7.9 kHz (at 44.1 kHz), 50 dB down
    half = 4 * step if step > 1 else 0
    taps = np.arange(-half, half + 1)
    kernel = np.sinc(taps / step) * np.hamming(taps.size) if step > 1 else np.ones(1)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    block = _LOW_BLOCK * step
    out = []
    for first in range(0, audio.shape[0], block):
        lo, hi = first - half, min(audio.shape[0], first + block) + half
        piece = audio[max(0, lo):hi].astype(np.float32).mean(axis=1) * np.float32(scale)
        piece = np.pad(piece, (max(0, -lo), max(0, hi - audio.shape[0])))
        out.append(np.convolve(piece, kernel, mode="valid")[::step])
    low = np.concatenate(out) if out else np.zeros(0, np.float32)
    return low.astype(np.float32), sample_rate / step


def _print(mono: NDArray[np.float32], sample_rate: float, speed: float) -> AudioPrint:
    length = round(_FRAME_SECONDS * sample_rate / speed)
    hop = _HOP_SECONDS * sample_rate / speed
    count = max(0, int((mono.size - length) / hop) + 1)
    # the first FFT bin of each band, and the end of the last (bins ascend with frequency)
    edges = np.searchsorted(np.fft.rfftfreq(length, 1 / sample_rate), _BAND_EDGES_HZ * speed)
    window = np.hanning(length).astype(np.float32)
    energies = np.empty((count, _BAND_EDGES_HZ.size - 1))
    power = np.empty(count)
    for first in range(0, count, _CHUNK_FRAMES):
        starts = np.rint(np.arange(first, min(count, first + _CHUNK_FRAMES)) * hop).astype(int)
        frames = mono[starts[:, None] + np.arange(length)] * window
        spectrum = np.fft.rfft(frames, axis=1)[:, edges[0]:edges[-1]]
        power[first:first + starts.size] = np.square(frames).mean(axis=1)
        energies[first:first + starts.size] = np.add.reduceat(
            spectrum.real ** 2 + spectrum.imag ** 2, edges[:-1] - edges[0], axis=1)
    difference = energies[:, :-1] - energies[:, 1:]
    signs = np.zeros((count, difference.shape[1]), dtype=bool)
    signs[1:] = (difference[1:] - difference[:-1]) > 0
    loud = power > _QUIET_POWER * np.mean(np.square(window))
    loud[1:] &= loud[:-1]
    if count:
        loud[0] = False
    weights = (1 << np.arange(signs.shape[1], dtype=np.uint64)).astype(np.uint64)
    bits = (signs.astype(np.uint64) * weights).sum(axis=1).astype(np.uint32)
    return AudioPrint(bits, loud, speed)


def best_audio_match(copies: list[AudioPrint], master: AudioPrint) -> AudioMatch | None:
    """The closest of `audio_match` over the suspect's prints at every speed."""
    found = [match for copy in copies
             if (match := audio_match(copy, master, min_seconds=MIN_MATCH_SECONDS))]
    return min(found, key=lambda match: match.bit_error_rate, default=None)


def _planes(fingerprint: AudioPrint) -> NDArray[np.float64]:
    """The bits as +-1 (0 where the frame is quiet), one row per bit."""
    bits = (fingerprint.bits[None, :] >> np.arange(32, dtype=np.uint32)[:, None]) & 1
    return np.asarray((2.0 * bits - 1.0) * fingerprint.loud[None, :], np.float64)


def audio_match(copy: AudioPrint, master: AudioPrint, *, min_seconds: float
                ) -> AudioMatch | None:
    """The offset where ``copy`` agrees best with ``master``: among those where the copy
    lies (almost) within the master, or the master within it, and at least ``min_seconds``
    of frames loud in both overlap. None if there is no such offset."""
    n, m = copy.bits.size, master.bits.size
    if not n or not m:
        return None
    size = 1 << int(np.ceil(np.log2(n + m)))
    agreement = np.fft.irfft((np.fft.rfft(_planes(master), size, axis=1)
                              * np.conj(np.fft.rfft(_planes(copy), size, axis=1))).sum(axis=0),
                             size)
    loud = np.rint(np.fft.irfft(np.fft.rfft(master.loud.astype(np.float64), size)
                                * np.conj(np.fft.rfft(copy.loud.astype(np.float64), size)),
                                size))
    # index i puts the copy's first frame on the master's frame i (i - size if negative)
    offsets = np.arange(size)
    offsets[offsets >= size - n] -= size
    span = np.minimum(m, offsets + n) - np.maximum(0, offsets)
    usable = (span >= _MIN_SHARE * min(n, m)) & (loud >= max(1.0, min_seconds / _HOP_SECONDS))
    if not usable.any():
        return None
    rate = np.full(size, np.inf)
    rate[usable] = (1.0 - agreement[usable] / (32.0 * loud[usable])) / 2.0
    best = int(np.argmin(rate))
    return AudioMatch(bit_error_rate=float(rate[best]),
                      master_seconds=float(offsets[best] * _HOP_SECONDS),
                      overlap_seconds=float(loud[best] * _HOP_SECONDS), speed=copy.speed)
