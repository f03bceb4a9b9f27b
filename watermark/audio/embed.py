"""Embedding: raise one half of each band and lower the other, by the cell's keyed sign.

Every channel gets the same multiplicative change, so any mix of the channels (a mono
downmix) carries the same mark. The pattern repeats every period from the first sample,
so the mark is read from any excerpt holding a whole period. Before handing the copy over,
the embedder checks its own work: the signal-to-noise ratio against the input on every
channel, and a read at the known alignment that must give back the payload (a clip with
no room for a mark, nearly silent, say, is refused rather than delivered unmarked as if
it were marked).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.audio.layout import audio_layout
from watermark.audio.params import SNR_FLOOR_DB, SNR_TARGET_DB, STEP_HOPS
from watermark.audio.samples import as_float, like_input
from watermark.audio.shaping import cell_strengths
from watermark.audio.spectrum import (
    BANDS,
    add_modification,
    band_split,
    frame_length,
    half_band_power,
    power_prefix,
)
from watermark.audio.statistic import soft_values, step_difference, whitened
from watermark.errors import EmbedCheckError
from watermark.payload import codeword, decode, validate_key, validate_payload

Floats = NDArray[np.float64]

CALIBRATION_DB = 0.3
"""A first copy further than this from the SNR target is made again, re-aimed."""


def _bin_gains(strength_db: Floats, signs: Floats, length: int, sample_rate: int,
               frames: int) -> Floats:
    """Per frame and frequency bin, the factor minus one that the frame's spectrum gets."""
    split = band_split(length, sample_rate)
    bins = length // 2 + 1
    band = np.full(bins, -1, np.intp)
    half = np.zeros(bins)
    for index, (low, middle, high) in enumerate(split):
        band[low:high] = index
        half[low:middle], half[middle:high] = 1.0, -1.0
    marked = band >= 0
    per_hop = np.repeat(strength_db * signs, STEP_HOPS, axis=0)
    level = np.zeros((frames, bins))
    level[: per_hop.shape[0], marked] = per_hop[:, band[marked]] * half[marked]
    return np.asarray(10 ** (level / 20) - 1, np.float64)


def _snr_db(original: Floats, marked: Floats) -> float:
    noise = float(np.square(marked - original).sum())
    signal = float(np.square(original).sum())
    return float("inf") if noise == 0 else 10 * float(np.log10(signal / noise))


def embed(samples: NDArray[np.generic], sample_rate: int, key: bytes, payload: int
          ) -> NDArray[np.generic]:
    """The marked copy of ``samples`` ((frames,) or (frames, channels), floats in [-1, 1]
    or integer PCM), in the same shape and sample type."""
    raw = validate_key(key)
    value = validate_payload(payload)
    audio = as_float(samples, sample_rate, purpose="mark")
    length = frame_length(sample_rate)
    hop = length // 2
    frames = (audio.shape[0] - length) // hop + 1
    steps = frames // STEP_HOPS
    mono = audio.mean(axis=1)
    prefix, _inside = power_prefix(mono, np.arange(frames) * hop, length)
    low, high = half_band_power(prefix, band_split(length, sample_rate))
    per_step = STEP_HOPS * steps
    low_steps = low[:per_step].reshape(steps, STEP_HOPS, BANDS).sum(axis=1)
    high_steps = high[:per_step].reshape(steps, STEP_HOPS, BANDS).sum(axis=1)
    frame_power = prefix[:per_step, -1].reshape(steps, STEP_HOPS).mean(axis=1)
    # mean square of a windowed frame from its half spectrum (Parseval; sum of w^2 = L/2)
    level = 10 * np.log10(4 * frame_power / length**2 + 1e-30)
    layout = audio_layout(raw)
    rows = np.arange(steps) % layout.bit.shape[0]
    signs = layout.signs(codeword(raw, value))[rows]
    total = float(prefix[:, -1].sum())
    strength = cell_strengths(low_steps, high_steps, level, total)
    marked = _marked(audio, strength, signs, sample_rate, frames)
    worst = _worst_snr_db(audio, marked)
    if abs(worst - SNR_TARGET_DB) > CALIBRATION_DB and np.any(strength):
        # The budget is spent in the frame domain, which misjudges the overlap-added change
        # by a dB or two, either way, depending on how alike neighbouring frames are: one
        # measured correction of the estimate's target lands the copy on the real one.
        strength = cell_strengths(low_steps, high_steps, level, total,
                                  snr_db=SNR_TARGET_DB + (SNR_TARGET_DB - worst))
        marked = _marked(audio, strength, signs, sample_rate, frames)
    _check(audio, marked, raw, value, sample_rate)
    return like_input(marked, samples)


def _marked(audio: Floats, strength: Floats, signs: Floats, sample_rate: int, frames: int
            ) -> Floats:
    length = frame_length(sample_rate)
    gains = _bin_gains(strength, signs, length, sample_rate, frames)
    return np.stack([add_modification(audio[:, channel], gains, length)
                     for channel in range(audio.shape[1])], axis=1)


def _worst_snr_db(audio: Floats, marked: Floats) -> float:
    return min(_snr_db(audio[:, c], marked[:, c]) for c in range(audio.shape[1]))


def _check(audio: Floats, marked: Floats, key: bytes, payload: int, sample_rate: int) -> None:
    worst = _worst_snr_db(audio, marked)
    if worst < SNR_FLOOR_DB:
        raise EmbedCheckError(f"the marked copy's SNR would be {worst:.1f} dB, below "
                              f"the floor of {SNR_FLOOR_DB:.0f} dB")
    length = frame_length(sample_rate)
    hop = length // 2
    mono = marked.mean(axis=1)
    frames = (mono.size - length) // hop + 1
    prefix, inside = power_prefix(mono, np.arange(frames) * hop, length)
    low, high = half_band_power(prefix, band_split(length, sample_rate))
    steps = frames // STEP_HOPS
    steady = np.asarray(inside[: steps * STEP_HOPS].reshape(steps, STEP_HOPS).all(axis=1), bool)
    cells = whitened(step_difference(low, high), steady)
    decoded = decode(key, soft_values(cells, audio_layout(key), 0))
    if decoded.payload != payload:
        raise EmbedCheckError("a read of the marked copy does not give back the payload: "
                              "the audio has no room for a mark (too quiet or too short)")
