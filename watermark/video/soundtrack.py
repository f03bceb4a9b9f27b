"""The soundtrack: decoded, marked with the audio mark, re-encoded near its bitrate.

The audio mark (`watermark.audio.embed`) needs its whole signal at once and at most 20
minutes of it, at least 8 s. A track is therefore marked in segments of
`SEGMENT_SECONDS` (the last one takes the remainder, up to twice that), each marked on its
own: its keyed pattern starts again at each segment's first sample, and the audio
reader finds it in any excerpt of 10 s or more inside a segment. What is held: the
decoded samples of at most two segments (float32), and the whole track's compressed
packets (small: 128 kbit/s is about 1 MB a minute).

A track, or a last segment, too short for the audio mark (under 8 s), or one the audio
mark refuses (too quiet: its own self-check fails; an unusual rate), is re-encoded
unmarked: the picture carries the payload. `SoundtrackResult.marked_seconds` says how
much of the track carries the audio mark.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from watermark.errors import EmbedCheckError, UnsupportedAudioError

SEGMENT_SECONDS: Final = 180.0
"""Audio marked at once; a last piece shorter than this joins the segment before it."""

FRAME_SECONDS: Final = 1.0
"""Marked samples go to the encoder in frames of this length (it re-frames them)."""

Floats = NDArray[np.float32]


@dataclass
class SoundtrackResult:
    """The encoded audio of the copy and how much of it carries the audio mark."""

    packets: list[Any]
    marked_seconds: float
    total_seconds: float


def decoded_chunks(frames: Iterator[Any], layout: str, rate: int) -> Iterator[Floats]:
    """Each decoded frame as float32 (channels, samples) at the source's rate and layout."""
    import av

    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    for frame in frames:
        for out in resampler.resample(frame):
            yield np.asarray(out.to_ndarray(), np.float32)
    for out in resampler.resample(None):
        yield np.asarray(out.to_ndarray(), np.float32)


def mark_segment(samples: Floats, rate: int, key: bytes, payload: int) -> tuple[Floats, bool]:
    """The segment (channels, samples) marked, or as it was if the audio mark refuses it."""
    from watermark.audio import embed

    try:
        marked = embed(np.ascontiguousarray(samples.T), rate, key, payload)
    except (UnsupportedAudioError, EmbedCheckError):
        # too short (AudioTooShortError), too quiet (the audio self-check), odd rate:
        # the picture carries the payload; this part of the soundtrack goes out unmarked
        return samples, False
    return np.ascontiguousarray(np.asarray(marked, np.float32).T), True


class SegmentEncoder:
    """Feeds marked segments to the audio encoder with continuous timestamps."""

    def __init__(self, stream: Any, layout: str, rate: int, start_pts: int) -> None:
        self.stream = stream
        self.layout = layout
        self.rate = rate
        self.next_pts = start_pts
        self.packets: list[Any] = []

    def write(self, samples: Floats) -> None:
        import av

        step = round(FRAME_SECONDS * self.rate)
        for begin in range(0, samples.shape[1], step):
            chunk = np.ascontiguousarray(samples[:, begin : begin + step])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self.next_pts
            frame.time_base = Fraction(1, self.rate)
            self.next_pts += chunk.shape[1]
            self.packets.extend(self.stream.encode(frame))

    def finish(self) -> None:
        self.packets.extend(self.stream.encode(None))


def mark_track(chunks: Iterator[Floats], encoder: SegmentEncoder, key: bytes, payload: int
               ) -> SoundtrackResult:
    """Mark and encode the whole track, holding at most two segments of samples."""
    rate = encoder.rate
    segment = round(SEGMENT_SECONDS * rate)
    buffered: list[Floats] = []
    held = 0
    marked_samples = 0
    total = 0

    def flush(count: int) -> None:
        nonlocal buffered, held, marked_samples
        joined = np.concatenate(buffered, axis=1)
        piece, rest = joined[:, :count], joined[:, count:]
        out, marked = mark_segment(piece, rate, key, payload)
        marked_samples += piece.shape[1] if marked else 0
        encoder.write(out)
        buffered = [rest] if rest.shape[1] else []
        held = rest.shape[1]

    for chunk in chunks:
        buffered.append(chunk)
        held += chunk.shape[1]
        total += chunk.shape[1]
        if held >= 2 * segment:
            flush(segment)
    if held:
        flush(held)
    encoder.finish()
    return SoundtrackResult(encoder.packets, marked_samples / rate, total / rate)
