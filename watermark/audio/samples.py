"""Audio in and out of the mark: shapes, sample types and the limits, checked up front.

Callers hand over what their decoder gives (soundfile's floats, a WAV's integers, one
channel or several); the mark works on float64 frames x channels and gives back the type
and shape it received, so a 16-bit master becomes a 16-bit copy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.audio.params import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, MIN_SECONDS
from watermark.errors import AudioTooShortError, UnsupportedAudioError

Floats = NDArray[np.float64]


def as_channels(samples: object, sample_rate: object, *, purpose: str,
                min_seconds: float = MIN_SECONDS) -> list[Floats]:
    """``samples`` as one contiguous float64 array per channel, or a clear
    `UnsupportedAudioError` (each channel is converted straight from the interleaved
    input: one pass over the samples, not two)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise UnsupportedAudioError(f"the sample rate must be an integer, not {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise UnsupportedAudioError(
            f"cannot {purpose} audio at {sample_rate} Hz: the rate must be between "
            f"{MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz")
    if not isinstance(samples, np.ndarray) or samples.ndim not in (1, 2):
        raise UnsupportedAudioError("samples must be a 1-D or 2-D (frames, channels) array")
    if samples.ndim == 2 and not 1 <= samples.shape[1] <= MAX_CHANNELS:
        raise UnsupportedAudioError(
            f"cannot {purpose} audio with {samples.shape[1]} channels (at most {MAX_CHANNELS})")
    columns = [samples] if samples.ndim == 1 else [samples[:, c] for c in range(samples.shape[1])]
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        channels = [np.divide(column, scale, dtype=np.float64) for column in columns]
    elif np.issubdtype(samples.dtype, np.floating):
        channels = [column.astype(np.float64) for column in columns]
        if not all(np.isfinite(channel).all() for channel in channels):
            raise UnsupportedAudioError("the samples contain NaN or infinite values")
    else:
        raise UnsupportedAudioError(f"samples of type {samples.dtype} are not audio")
    seconds = samples.shape[0] / int(sample_rate)
    if seconds < min_seconds:
        raise AudioTooShortError(
            f"{seconds:.1f} s of audio is too short to {purpose}: the mark needs at least "
            f"{min_seconds:.0f} s")
    return channels


def mixdown(channels: list[Floats]) -> Floats:
    """The channels' mean, added up in order (the same numbers as ``mean(axis=1)`` over
    interleaved samples, without striding through them)."""
    total = channels[0].copy()
    for channel in channels[1:]:
        total += channel
    if len(channels) > 1:
        total /= len(channels)
    return total


def like_input(channels: list[Floats], original: NDArray[np.generic]) -> NDArray[np.generic]:
    """The channels in the original's shape and sample type (integers rounded and clipped)."""
    out = np.empty((channels[0].size, len(channels)), original.dtype)
    for index, channel in enumerate(channels):
        if np.issubdtype(original.dtype, np.integer):
            info = np.iinfo(original.dtype.name)
            scale = float(info.max) + 1.0
            out[:, index] = np.clip(np.rint(channel * scale), info.min, info.max)
        else:
            out[:, index] = channel
    return out[:, 0] if original.ndim == 1 else out
