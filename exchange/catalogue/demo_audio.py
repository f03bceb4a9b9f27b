"""Music the demo makes for itself, so it needs no downloaded recordings.

Each clip is a short arrangement, seeded: a bass line, chords and a melody of plucked
notes with a few harmonics, and hi-hats (bright noise), panned across two channels. That
is what the audio mark and the tracer's fingerprint meet in real music: onsets, a bass
holding most of the energy, a wide spectrum. Two seeds give two different pieces (key,
tempo, bass line and melody all come from the seed). Encoded as an MP3 with LAME
(`lameenc`), as most music is sold, so the demo's first `get` can be an audio file.
"""

from __future__ import annotations

import lameenc
import numpy as np
from numpy.typing import NDArray

RATE = 44_100
#: a natural minor scale, in semitones above the key's root
_SCALE = np.array([0, 2, 3, 5, 7, 8, 10, 12])


def demo_music(*, seed: int, seconds: float = 24.0, rate: int = RATE) -> NDArray[np.float32]:
    """A stereo clip, (frames, 2) floats peaking at 0.8; the same for the same arguments."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros((n, 2))
    root = 196.0 * 2 ** (int(rng.integers(0, 7)) / 12)  # G3 to C#4
    beat = 60 / rng.uniform(96, 132) / 2  # eighth notes
    scale = root * 2 ** (_SCALE / 12)
    for start in np.arange(0, seconds, beat):
        i0 = int(start * rate)
        i1 = min(n, int((start + beat * rng.integers(1, 4)) * rate))
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
    steps = rng.choice(_SCALE[:5], size=4)  # a four-bar bass line, one note a bar
    bass = root / 4 * 2 ** (steps[(t / (8 * beat)).astype(int) % 4] / 12)
    out += (0.3 * np.sin(2 * np.pi * np.cumsum(bass) / rate))[:, None]
    return np.asarray(out / np.abs(out).max() * 0.8, np.float32)


def mp3_bytes(samples: NDArray[np.floating], *, rate: int = RATE, kbps: int = 128) -> bytes:
    """``samples`` ((frames, channels) floats in [-1, 1]) as a constant-bitrate MP3."""
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_channels(pcm.shape[1])
    encoder.set_quality(5)  # LAME's "good": a demo master, made in a fifth of a second
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def demo_music_mp3(*, seed: int, seconds: float = 24.0, kbps: int = 128) -> bytes:
    """`demo_music` as an MP3, the way a demo work is uploaded."""
    return mp3_bytes(demo_music(seed=seed, seconds=seconds), kbps=kbps)
