"""Generated clips for the audio mark's unit tests: music and speech-like sound, seeded.

The real recordings belong to the benchmark; these are small, fast and reproducible, and
made to have what marks trip over: notes that start and stop (onsets), a bass line
holding most of the energy, bright noise (cymbals), pauses and digital silence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

RATE = 44_100


def music(seconds: float = 12.0, *, seed: int = 1, rate: int = RATE) -> NDArray[np.float32]:
    """A stereo arrangement: chords and a melody over a bass line, with hi-hats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros((n, 2))
    beat = 0.25
    scale = 220.0 * 2 ** (np.array([0, 2, 3, 5, 7, 8, 10, 12]) / 12)
    for start in np.arange(0, seconds, beat):
        i0, i1 = int(start * rate), min(n, int((start + beat * rng.integers(1, 4)) * rate))
        span = t[i0:i1] - start
        envelope = np.minimum(1, span / 0.01) * np.exp(-span * rng.uniform(2, 6))
        note = rng.choice(scale) * rng.choice([1, 2])
        tone = sum(np.sin(2 * np.pi * note * h * span) / h**1.3 for h in range(1, 7))
        pan = rng.uniform(0.2, 0.8)
        out[i0:i1, 0] += 0.18 * pan * envelope * tone
        out[i0:i1, 1] += 0.18 * (1 - pan) * envelope * tone
        if rng.random() < 0.6:  # a hi-hat: bright, short noise
            k = min(n - i0, int(0.05 * rate))
            hat = rng.normal(0, 0.05, k) * np.exp(-np.arange(k) / (0.01 * rate))
            out[i0:i0 + k] += np.diff(np.concatenate([[0], hat]))[:, None]
    bass = 55.0 * 2 ** (np.floor(t / 2) % 4 * 5 / 12)
    out += (0.3 * np.sin(2 * np.pi * np.cumsum(bass) / rate))[:, None]
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


def speech_like(seconds: float = 12.0, *, seed: int = 2, rate: int = RATE
                ) -> NDArray[np.float32]:
    """Mono voiced syllables (a gliding pitch with formants) separated by pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    position = 0
    while position < n:
        length = int(rng.uniform(0.15, 0.4) * rate)
        t = np.arange(length) / rate
        pitch = rng.uniform(100, 180) * (1 + 0.2 * t)
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        voiced = sum(np.sin(h * phase) * np.exp(-((h * pitch - f) / 300) ** 2)
                     for h in range(1, 30) for f in (rng.uniform(400, 900),
                                                     rng.uniform(1000, 2500)))
        voiced = voiced * np.hanning(length)
        end = min(n, position + length)
        out[position:end] += voiced[: end - position]
        position = end + int(rng.uniform(0.05, 0.3) * rate)
    out += rng.normal(0, 0.002, n)  # room noise: a pause is quiet, not digital silence
    return (out / np.abs(out).max() * 0.7).astype(np.float32)
