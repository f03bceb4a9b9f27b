"""Reading a video: the picture's evidence summed over frames, and the soundtrack's.

Blind: frames spread evenly over the clip (at most `READ_FRAMES`) are resized to the
canonical picture and their detector contributions added per coded bit (`frames.Evidence`);
one decode per candidate grid (one, or two when the copy's aspect ratio sits near a
rounding edge of the column count). The soundtrack, if it has at least 8 s, is read by
the audio mark's own reader (`watermark.audio.extract`) on its first `AUDIO_SECONDS`.

Informed (the master's bytes given): see `informed`.

False positives: each decode attempt matches the 24-bit keyed check by chance with
probability 2**-24 (6e-8). A blind call makes at most 4 picture decodes (two cell sides
times at most two canonical widths) and the audio reader at most 3; an informed call at
most 2 picture decodes (master-subtracted, then registered only), or the blind read's 4
if registration fails, then the audio reader's informed read (at most 3) and, if that
finds nothing, its blind read (3): at most 10 attempts, a false-positive rate below
6e-7 per call, far under the 1e-4 required.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from watermark.errors import CorruptVideoError, UnsupportedAudioError, WatermarkError
from watermark.payload import decode, validate_key
from watermark.result import ExtractResult
from watermark.video import frames, probe

READ_FRAMES: Final = 240
"""Frames a read analyses, spread over the clip: 10 s at 24 fps, or every n-th frame of a
longer clip. Neighbouring frames share most of their picture, so evidence from frames a
few apart is nearly as good and cheaper."""

AUDIO_SECONDS: Final = 120.0
"""Soundtrack a read decodes: the audio reader needs 10 s; two minutes give it margin."""


def luma_of(frame: Any) -> NDArray[np.float32]:
    """The frame's luma plane as float32 (height, width), any pixel format."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "yuv444p", "yuv422p", "gray"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width].astype(np.float32)


def sampled_frames(data: bytes, max_frames: int, stride: int | None = None
                   ) -> Iterator[tuple[float, NDArray[np.float32]]]:
    """(time in seconds, luma) of up to `max_frames` frames spread evenly over the clip
    (every `stride`-th frame from the first, if given)."""
    import av

    with probe.open_input(data) as container:
        if not container.streams.video:
            raise CorruptVideoError("the file has no video stream")
        video = container.streams.video[0]
        video.codec_context.thread_count = 2
        video.codec_context.thread_type = "AUTO"
        estimate = int(video.frames) or round(
            float(video.duration * video.time_base) * float(probe.fps_of(video) or 30)
            if video.duration and video.time_base else 0)
        if stride is None:
            stride = max(1, math.ceil(estimate / max_frames)) if estimate else 1
        taken = 0
        try:
            for index, frame in enumerate(container.decode(video)):
                if index % stride:
                    continue
                yield (float(frame.time) if frame.time is not None else index / 30.0,
                       luma_of(frame))
                taken += 1
                if taken >= max_frames:
                    return
        except WatermarkError:
            raise
        except (av.FFmpegError, ValueError, OSError) as error:
            if taken == 0:
                raise CorruptVideoError(f"the video does not decode: {error}") from error


def _decided(evidence: frames.Evidence, key: bytes, *, informed: bool) -> ExtractResult:
    decoded = decode(key, evidence.soft())
    return ExtractResult(decoded.check_ok, decoded.payload, decoded.bit_errors,
                         decoded.score, informed=informed,
                         evidence=("picture",) if decoded.check_ok else ())


def read_picture(data: bytes, key: bytes, *, max_frames: int = READ_FRAMES,
                 grid_of_master: tuple[int, int] | None = None,
                 stride: int | None = None) -> ExtractResult:
    """A blind read of the picture alone. The embedder's self-check passes
    `grid_of_master` (its canonical width and cell side) and reads only that grid."""
    evidences: list[frames.Evidence] = []
    for _, luma in sampled_frames(data, max_frames, stride):
        height, width = luma.shape
        if not evidences and grid_of_master is not None:
            evidences = [frames.evidence_for(key, *grid_of_master)]
        elif not evidences:
            evidences = [frames.evidence_for(key, cols, cell)
                         for cell in frames.read_cells(width, height)
                         for cols in frames.grid_cols(width, height)]
        canonical: dict[int, NDArray[np.float32]] = {}
        for evidence in evidences:
            if evidence.cols not in canonical:
                canonical[evidence.cols] = frames.canonical_luma(luma, evidence.cols)
            evidence.add(canonical[evidence.cols])
    if not evidences:
        raise CorruptVideoError("no frame of the video decodes")
    results = [_decided(evidence, key, informed=False) for evidence in evidences]
    return next((r for r in results if r.found), results[0])


def audio_samples(data: bytes, seconds: float) -> tuple[NDArray[np.float32], int] | None:
    """The first `seconds` of the soundtrack as (samples, channels) float32, or None."""
    import av

    with probe.open_input(data) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        if not rate:
            return None
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout.name,
                                      rate=rate)
        chunks: list[NDArray[np.float32]] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = np.asarray(out.to_ndarray(), np.float32)
                    chunks.append(chunk)
                    total += chunk.shape[1]
                if total >= seconds * rate:
                    break
        except (av.FFmpegError, ValueError, OSError):
            if not chunks:
                return None
    if not chunks:
        return None
    joined = np.concatenate(chunks, axis=1)[:, : round(seconds * rate)]
    return np.ascontiguousarray(joined.T), rate


def read_audio(data: bytes, key: bytes, reference: bytes | None = None) -> ExtractResult | None:
    """The audio mark's read of the soundtrack (None if there is none long enough)."""
    from watermark.audio import extract

    suspect = audio_samples(data, AUDIO_SECONDS)
    if suspect is None:
        return None
    master = audio_samples(reference, AUDIO_SECONDS * 2) if reference is not None else None
    try:
        if master is not None:
            informed = extract(suspect[0], suspect[1], key, reference=master[0],
                               reference_rate=master[1])
            if informed.found:
                return informed
        # blind too: the audio reader's informed placement can miss where its blind
        # sync search does not (seen on a cropped, re-encoded WebM of generated music)
        return extract(suspect[0], suspect[1], key)
    except UnsupportedAudioError:
        return None


def combined(picture: ExtractResult, audio: ExtractResult | None) -> ExtractResult:
    """One answer from both carriers; `evidence` names those that gave the payload."""
    if audio is None or not audio.found:
        return picture
    if not picture.found:
        return ExtractResult(found=True, payload=audio.payload, bit_errors=audio.bit_errors,
                             score=audio.score, informed=audio.informed,
                             offset_seconds=audio.offset_seconds, speed=audio.speed,
                             evidence=("audio",))
    if picture.payload != audio.payload:
        # two carriers naming two payloads under one key: report the picture's (the
        # stronger carrier) and do not claim the audio agrees
        return picture
    return ExtractResult(found=True, payload=picture.payload, bit_errors=picture.bit_errors,
                         score=picture.score,
                         informed=picture.informed, alignment=picture.alignment,
                         offset_seconds=audio.offset_seconds, speed=audio.speed,
                         evidence=("picture", "audio"))


def extract_video_bytes(data: bytes, key: bytes, reference: bytes | None = None
                        ) -> ExtractResult:
    """Read the payload `key`'s holder embedded in the video `data`, if there is one.

    Without `reference` the read is blind; with the master's bytes it is informed
    (registers crops and scaling first). Raises `InvalidKeyError` or an
    `UnsupportedVideoError` subclass for bytes that are not a readable MP4 or WebM.
    """
    import av

    raw_key = validate_key(key)
    try:
        raw = bytes(data)
        probe.check_format(raw)
        if reference is None:
            picture = read_picture(raw, raw_key)
            return combined(picture, read_audio(raw, raw_key))
        from watermark.video.informed import read_informed

        master = bytes(reference)
        probe.check_format(master)
        picture = read_informed(raw, master, raw_key)
        return combined(picture, read_audio(raw, raw_key, master))
    except WatermarkError:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        # what PyAV or FFmpeg raised that the stages did not catch: unreadable bytes
        raise CorruptVideoError(f"the video cannot be read: {error}") from error
