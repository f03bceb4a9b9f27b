"""Small crafted clips for the video tests: codecs, sizes, rates and tags the corpus
(tests/watermark/video_clips.py) does not make, and a remuxer that adds tags.

Not a test module by content (pytest collects it and finds nothing); the other
test_video* modules import it. What the tests compare against are properties of these
inputs (their size, rate, tags), never values computed by the library under test.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from numpy.typing import NDArray

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PAYLOAD = 0x0123_4567_89AB_CDEF


def _picture(width: int, height: int, index: int) -> NDArray[np.uint8]:
    """A smooth moving picture (gradients and a bright bar), YUV 4:2:0 as one array."""
    y = np.linspace(40, 200, width, dtype=np.float32)[None, :] + np.linspace(
        -20, 20, height, dtype=np.float32)[:, None]
    start = (index * 3) % max(1, width - 16)
    y[:, start : start + 16] = 230
    chroma = np.full((height // 2, width), 128, np.uint8)
    return np.concatenate([y.clip(0, 255).astype(np.uint8), chroma], axis=0)


def encode_clip(fmt: str = "mp4", *, video_codec: str = "libx264", width: int = 160,
                height: int = 128, fps: Fraction | int = 24, frames: int = 30,
                audio_codec: str | None = None, audio_seconds: float = 1.0,
                video_options: dict[str, str] | None = None) -> bytes:
    """A small clip with the named codecs, for the bad-input tests (fast encoders)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt, options={"fflags": "+bitexact"}) as out:
        rate = Fraction(fps)
        video = out.add_stream(video_codec, rate=rate,
                               options=video_options or _fast(video_codec))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = 1 / rate
        video.codec_context.thread_count = 1
        audio = None
        if audio_codec:
            audio = out.add_stream(audio_codec, rate=48_000)
            audio.layout = "stereo"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_picture(width, height, index), format="yuv420p")
            frame.pts = index
            frame.time_base = 1 / rate
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            total = round(audio_seconds * 48_000)
            t = np.arange(total, dtype=np.float32) / 48_000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            samples = np.stack([tone, tone])
            for start in range(0, total, 4800):
                block = np.ascontiguousarray(samples[:, start : start + 4800])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate = 48_000
                frame.pts = start
                frame.time_base = Fraction(1, 48_000)
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return buffer.getvalue()


def _fast(codec: str) -> dict[str, str]:
    if codec == "libx264":
        return {"preset": "ultrafast"}
    if codec.startswith("libvpx"):
        return {"deadline": "realtime", "cpu-used": "8"}
    return {}


def remux(data: bytes, *, tags: dict[str, str] | None = None,
          stream_tags: dict[str, str] | None = None, rotation: float | None = None) -> bytes:
    """The same packets in a new container of the same kind, with tags (and a rotation)."""
    fmt = "mp4" if data[4:8] == b"ftyp" else "webm"
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(
            buffer, "w", format=fmt, options={"fflags": "+bitexact"}) as out:
        out.metadata.update(tags or {})
        mapping = {}
        for stream in source.streams:
            copy = out.add_stream_from_template(stream)
            copy.metadata.update(stream_tags or {})
            if stream.type == "video" and rotation is not None:
                copy.set_display_rotation(rotation)
            mapping[stream.index] = copy
        for packet in source.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return buffer.getvalue()
