"""What a video goes through after it is sold, as pure functions bytes -> bytes (PyAV only:
there is no ffmpeg program here), and the quality measures the video tests use.

Every attack decodes the whole file and encodes it again (video and sound), with the
encoders the corpus uses (tests/watermark/video_clips.py): H.264 (libx264, preset medium)
with AAC in MP4, VP9 (libvpx-vp9, good deadline, cpu-used 4) with Opus in WebM. Unless an
attack says otherwise the copy keeps the source's container and codecs, and its video bit
rate keeps the source's bits per pixel per second (measured from the source's packets), so
that only the named change happens:

- reencode_h264(data, bitrate_factor=0.5): to MP4/H.264 at `bitrate_factor` times the
  source's video bit rate (the "half bit rate" row), same size and rate.
- reencode_vp9(data, bitrate_factor=0.75): to WebM/VP9+Opus at 0.75 times the source's bit
  rate (what a platform's VP9 transcode spends for the H.264 it replaces), same size.
- downscale(data, height=480): scaled (bicubic) to `height`, width keeping the aspect
  (rounded to even), re-encoded.
- excerpt(data, start_seconds, seconds=10.0): the `seconds` from `start_seconds` on,
  decoded from the start and re-encoded, timestamps from zero. If `start_seconds` falls on
  a key frame it moves one frame on, so the excerpt always starts inside a GOP.
- change_fps(data, fps=25): retimed to `fps` by timestamp (each output frame is the last
  source frame at or before its time: frames dropped or repeated), re-encoded at the
  same bits per second.
- crop_downscale(data, keep=0.9, height=480): the central `keep` of each side, scaled to
  `height`, re-encoded.

Measures, on luma (the Y plane as decoded, frames paired by index): `frames_luma`,
`psnr` (from the mean squared error over every frame, as FFmpeg's psnr filter's
"average"), `ssim` (scikit-image's structural_similarity, mean over frames).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from numpy.typing import NDArray
from skimage.metrics import structural_similarity

from tests.watermark.video_clips import (
    add_audio_stream,
    add_video_stream,
    default_bitrate,
    open_output,
)


@dataclass(frozen=True)
class Info:
    container: str  # "mp4" or "webm" (what the attacks write for this source)
    codec: str  # the video codec's name as FFmpeg gives it ("h264", "vp9")
    width: int
    height: int
    fps: Fraction
    seconds: float  # the video stream's length: frames x frame duration
    frames: int
    video_bitrate: int  # bits per second, from the packets
    audio: bool
    audio_rate: int | None
    keyframes: tuple[float, ...]  # the key frames' times, seconds from the first frame


def info(data: bytes) -> Info:
    """What a file holds, from its packets (nothing decoded)."""
    with av.open(io.BytesIO(data)) as source:
        video = source.streams.video[0]
        audio = source.streams.audio[0] if source.streams.audio else None
        fps = Fraction(video.average_rate or video.guessed_rate or 30)
        sizes, times, keys = 0, [], []
        for packet in source.demux(video):
            if packet.size == 0 or packet.pts is None:
                continue
            sizes += packet.size
            assert packet.time_base is not None
            time = float(packet.pts * packet.time_base)
            times.append(time)
            if packet.is_keyframe:
                keys.append(time)
        first = min(times) if times else 0.0
        count = len(times)
        seconds = count / float(fps)
        name = video.codec_context.name
        return Info("webm" if name in ("vp8", "vp9", "av1") else "mp4", name,
                    video.width, video.height, fps, seconds, count,
                    int(sizes * 8 / seconds) if seconds else 0, audio is not None,
                    audio.rate if audio is not None else None,
                    tuple(sorted(k - first for k in keys)))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _transcode(data: bytes, *, container: str | None = None, height: int | None = None,
               keep: float = 1.0, fps: float | Fraction | None = None, start: float = 0.0,
               seconds: float | None = None, bitrate: int | None = None,
               preset: str = "medium") -> bytes:
    """Decode `data`, change what is asked, encode it again (see the module's docstring)."""
    src = info(data)
    container = container or src.container
    crop_w, crop_h = _even(src.width * keep), _even(src.height * keep)
    out_h = height or crop_h
    out_w = _even(crop_w * out_h / crop_h) if height else crop_w
    out_fps = Fraction(fps).limit_denominator(1001) if fps else src.fps
    if bitrate is None:
        bits_per_pixel = src.video_bitrate / (src.width * src.height)
        bitrate = int(bits_per_pixel * out_w * out_h) or default_bitrate(out_w, out_h, 30)
    end = start + seconds if seconds is not None else float("inf")
    buffer = io.BytesIO()
    output = open_output(buffer, container)
    video_out = add_video_stream(output, container, width=out_w, height=out_h,
                                 fps=out_fps, bitrate=bitrate, preset=preset)
    with av.open(io.BytesIO(data)) as source:
        video_in = source.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = source.streams.audio[0] if source.streams.audio else None
        audio_out = (add_audio_stream(output, container, audio_in.rate if container == "mp4"
                                      else None) if audio_in is not None else None)
        left, top = (src.width - crop_w) // 2, (src.height - crop_h) // 2
        first_video: float | None = None
        first_audio: float | None = None
        previous: av.VideoFrame | None = None
        index = 0  # output frames written
        samples = 0  # output audio samples written (at the source's rate)
        step = 1 / float(src.fps)

        def emit_until(time: float) -> Iterator[av.Packet]:
            """The held frame for every output time before `time` (relative to start)."""
            nonlocal index
            while previous is not None and index / out_fps < time - 1e-6:
                frame = previous
                frame.pts = index
                frame.time_base = Fraction(1) / out_fps
                yield from video_out.encode(frame)
                index += 1

        def prepared(frame: av.VideoFrame) -> av.VideoFrame:
            if keep < 1.0:
                rgb = frame.to_ndarray(format="rgb24")[top:top + crop_h, left:left + crop_w]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if (frame.width, frame.height) != (out_w, out_h) or frame.format.name != "yuv420p":
                frame = frame.reformat(width=out_w, height=out_h, format="yuv420p",
                                       interpolation="BICUBIC")
            return frame

        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        for packet in source.demux(*streams):
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if isinstance(frame, av.VideoFrame):
                    first_video = frame.time if first_video is None else first_video
                    # snapped to the source's frame grid: WebM's millisecond timestamps
                    time = round((frame.time - first_video) / step) * step
                    if time < start - 1e-6 or time >= end - 1e-6:
                        continue
                    output.mux(list(emit_until(time - start)))
                    previous = prepared(frame)
                elif audio_out is not None and isinstance(frame, av.AudioFrame):
                    first_audio = frame.time if first_audio is None else first_audio
                    time = frame.time - first_audio
                    if time < start - 1e-6 or time >= end - 1e-6:
                        continue
                    frame.pts = samples
                    frame.time_base = Fraction(1, frame.sample_rate)
                    samples += frame.samples
                    output.mux(audio_out.encode(frame))
        last = min(src.seconds, end) - start
        output.mux(list(emit_until(last)))
        output.mux(video_out.encode(None))
        if audio_out is not None:
            output.mux(audio_out.encode(None))
    output.close()
    return buffer.getvalue()


def reencode_h264(data: bytes, bitrate_factor: float = 0.5) -> bytes:
    """MP4/H.264+AAC at `bitrate_factor` times the source's video bit rate."""
    return _transcode(data, container="mp4",
                      bitrate=max(20_000, int(info(data).video_bitrate * bitrate_factor)))


def reencode_vp9(data: bytes, bitrate_factor: float = 0.75) -> bytes:
    """WebM/VP9+Opus at `bitrate_factor` times the source's video bit rate."""
    return _transcode(data, container="webm",
                      bitrate=max(20_000, int(info(data).video_bitrate * bitrate_factor)))


def downscale(data: bytes, height: int = 480) -> bytes:
    """Scaled to `height` (aspect kept, width even), re-encoded at the same bits per pixel."""
    return _transcode(data, height=height)


def excerpt(data: bytes, start_seconds: float, seconds: float = 10.0) -> bytes:
    """`seconds` of the video from `start_seconds` (moved one frame on if that is a key
    frame, so the excerpt starts inside a GOP), re-encoded, timestamps from zero."""
    src = info(data)
    step = 1 / float(src.fps)
    start = round(start_seconds / step) * step
    while any(abs(start - key) < step / 2 for key in src.keyframes):
        start += step
    return _transcode(data, start=start, seconds=seconds)


def change_fps(data: bytes, fps: float = 25) -> bytes:
    """Retimed to `fps` by timestamp (frames dropped or repeated), re-encoded at the same
    bits per second."""
    return _transcode(data, fps=fps)


def crop_downscale(data: bytes, keep: float = 0.9, height: int = 480) -> bytes:
    """The central `keep` of each side, scaled to `height`, re-encoded."""
    return _transcode(data, keep=keep, height=height)


# -- measures -----------------------------------------------------------------------------

def iter_luma(data: bytes, max_frames: int | None = None) -> Iterator[NDArray[np.uint8]]:
    """Each frame's Y plane as decoded, in presentation order."""
    with av.open(io.BytesIO(data)) as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        for count, decoded in enumerate(source.decode(stream)):
            if max_frames is not None and count >= max_frames:
                return
            frame = decoded if decoded.format.name == "yuv420p" else decoded.reformat(
                format="yuv420p")
            yield frame.to_ndarray()[: frame.height].copy()


def frames_luma(data: bytes, max_frames: int | None = None) -> NDArray[np.uint8]:
    """Every frame's luma (frames, height, width), or the first `max_frames`."""
    return np.stack(list(iter_luma(data, max_frames)))


def psnr(a: bytes, b: bytes, max_frames: int | None = None) -> float:
    """Luma PSNR in dB of `b` against `a` over the frames both have (paired by index; the
    same size needed), from the mean squared error over all of them; inf if identical."""
    total, count = 0.0, 0
    for x, y in zip(iter_luma(a, max_frames), iter_luma(b, max_frames), strict=False):
        if x.shape != y.shape:
            raise ValueError(f"frame sizes differ: {x.shape} and {y.shape}")
        total += float(np.mean((x.astype(np.float64) - y) ** 2))
        count += 1
    if count == 0:
        raise ValueError("no frames to compare")
    mse = total / count
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def ssim(a: bytes, b: bytes, max_frames: int | None = None, every: int = 1) -> float:
    """Mean luma SSIM of `b` against `a` (scikit-image, data range 255) over the frames both
    have, or every `every`-th of them."""
    values = []
    for index, (x, y) in enumerate(zip(iter_luma(a, max_frames), iter_luma(b, max_frames),
                                       strict=False)):
        if index % every == 0:
            values.append(structural_similarity(x, y, data_range=255))
    if not values:
        raise ValueError("no frames to compare")
    return float(np.mean(values))
