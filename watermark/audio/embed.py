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
from watermark.audio.samples import as_channels, like_input, mixdown
from watermark.audio.shaping import cell_strengths
from watermark.audio.spectrum import (
    BANDS,
    add_modification,
    band_split,
    frame_length,
    frame_spectra,
    half_band_power,
    power_prefix,
)
from watermark.audio.statistic import (
    above_floor,
    soft_values,
    step_difference,
    step_powers,
    whitened,
)
from watermark.errors import EmbedCheckError
from watermark.payload import codeword, decode, validate_key, validate_payload

Floats = NDArray[np.float64]

CALIBRATION_DB = 0.3
"""A first copy further than this from the SNR target is made again, re-aimed."""


def _bin_gains(strength_db: Floats, signs: Floats, length: int, sample_rate: int
               ) -> tuple[Floats, slice]:
    """Per frame and frequency bin of the marked range, the factor minus one that the
    frame's spectrum gets; and which bins those are."""
    split = band_split(length, sample_rate)
    bins = slice(int(split[0, 0]), int(split[-1, 2]))
    width = bins.stop - bins.start
    band = np.empty(width, np.intp)
    half = np.empty(width)
    for index, (low, middle, high) in enumerate(split - bins.start):
        band[low:high] = index
        half[low:middle], half[middle:high] = 1.0, -1.0
    # per step, then held for its hops: the same numbers as working per hop, computed once
    per_step = 10 ** ((strength_db * signs)[:, band] * half / 20) - 1
    return np.asarray(np.repeat(per_step, STEP_HOPS, axis=0), np.float64), bins


def _worst_snr_db(channels: list[Floats], energies: list[float], marked: list[Floats]
                  ) -> float:
    """The lowest signal-to-noise ratio over the channels (``energies``: their power sums)."""
    worst = float("inf")
    for original, signal, copy in zip(channels, energies, marked, strict=True):
        change = copy - original
        noise = float(np.square(change, out=change).sum())
        if noise:
            worst = min(worst, 10 * float(np.log10(signal / noise)))
    return worst


def embed(samples: NDArray[np.generic], sample_rate: int, key: bytes, payload: int
          ) -> NDArray[np.generic]:
    """The marked copy of ``samples`` ((frames,) or (frames, channels), floats in [-1, 1]
    or integer PCM), in the same shape and sample type."""
    raw = validate_key(key)
    value = validate_payload(payload)
    channels = as_channels(samples, sample_rate, purpose="mark")
    energies = [float(np.square(channel).sum()) for channel in channels]
    length = frame_length(sample_rate)
    hop = length // 2
    frames = (channels[0].size - length) // hop + 1
    steps = frames // STEP_HOPS
    prefix, _inside = power_prefix(mixdown(channels), np.arange(frames) * hop, length)
    split = band_split(length, sample_rate)
    bins = slice(int(split[0, 0]), int(split[-1, 2]))
    # each channel's spectra on the marked bins, once for the first copy and the re-aimed one
    spectra = [frame_spectra(channel, steps * STEP_HOPS, length, bins) for channel in channels]
    low, high = half_band_power(prefix, split)
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
    marked = _marked(channels, spectra, strength, signs, sample_rate)
    worst = _worst_snr_db(channels, energies, marked)
    if abs(worst - SNR_TARGET_DB) > CALIBRATION_DB and np.any(strength):
        # The budget is spent in the frame domain, which misjudges the overlap-added change
        # by a dB or two, either way, depending on how alike neighbouring frames are: one
        # measured correction of the estimate's target lands the copy on the real one.
        strength = cell_strengths(low_steps, high_steps, level, total,
                                  snr_db=SNR_TARGET_DB + (SNR_TARGET_DB - worst))
        marked = _marked(channels, spectra, strength, signs, sample_rate)
        worst = _worst_snr_db(channels, energies, marked)
    _check(marked, worst, raw, value, sample_rate)
    return like_input(marked, samples)


def _marked(channels: list[Floats], spectra: list[NDArray[np.complex128]], strength: Floats,
            signs: Floats, sample_rate: int) -> list[Floats]:
    length = frame_length(sample_rate)
    gains, bins = _bin_gains(strength, signs, length, sample_rate)
    return [add_modification(channel, spectrum, gains, bins, length)
            for channel, spectrum in zip(channels, spectra, strict=True)]


def _check(marked: list[Floats], worst: float, key: bytes, payload: int, sample_rate: int
           ) -> None:
    """Refuse a copy below the SNR floor, or one whose read at the known alignment (the
    period starts at the first sample) does not give back the payload."""
    if worst < SNR_FLOOR_DB:
        raise EmbedCheckError(f"the marked copy's SNR would be {worst:.1f} dB, below "
                              f"the floor of {SNR_FLOOR_DB:.0f} dB")
    length = frame_length(sample_rate)
    hop = length // 2
    mono = mixdown(marked)
    frames = (mono.size - length) // hop + 1
    split = band_split(length, sample_rate)
    prefix, inside = power_prefix(mono, np.arange(frames) * hop, length,
                                  bins=int(split[-1, 2]))
    low, high = half_band_power(prefix, split)
    steps = frames // STEP_HOPS
    steady = np.asarray(inside[: steps * STEP_HOPS].reshape(steps, STEP_HOPS).all(axis=1), bool)
    # the blind reader's own statistic, at the known alignment
    low_steps, high_steps = step_powers(low, high)
    cells = whitened(step_difference(low_steps, high_steps), steady,
                     weight=above_floor(low_steps + high_steps))
    decoded = decode(key, soft_values(cells, audio_layout(key), 0))
    if decoded.payload != payload:
        raise EmbedCheckError("a read of the marked copy does not give back the payload: "
                              "the audio has no room for a mark (too quiet or too short)")
