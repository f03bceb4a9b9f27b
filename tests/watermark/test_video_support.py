"""Small synthetic clips for the video tests (built with PyAV, a few seconds each).

Not a test module by content: pytest collects it, finds no tests, and the other
test_video* modules import its builders. The expected values the tests compare against
are properties of these inputs (their size, rate, tags), never computed by the library.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from numpy.typing import NDArray


def texture(height: int, width: int, seed: int) -> NDArray[np.float32]:
    """A smoothed noise picture with edges, in [30, 220]: something with detail to hide in."""
    rng = np.random.default_rng(seed)
    small = rng.normal(size=(height // 8 + 2, width // 8 + 2)).astype(np.float32)
    big = np.kron(small, np.ones((8, 8), np.float32))[:height, :width]
    fine = rng.normal(scale=0.6, size=(height, width)).astype(np.float32)
    picture = 125 + 40 * big + 12 * fine
    ramp = np.linspace(-30, 30, width, dtype=np.float32)[None, :]
    return np.clip(picture + ramp, 30, 220).astype(np.float32)


def frames(width: int, height: int, count: int, seed: int = 1, *, moving: bool = True
           ) -> list[NDArray[np.uint8]]:
    """YUV 4:2:0 frames as (height * 3 / 2, width) uint8 arrays: a panning texture."""
    base = texture(height, width + 4 * count, seed)
    out = []
    rng = np.random.default_rng(seed + 7)
    chroma = (128 + 10 * rng.normal(size=(height // 2, width))).clip(0, 255).astype(np.uint8)
    for index in range(count):
        shift = 2 * index if moving else 0
        luma = base[:, shift : shift + width].astype(np.uint8)
        out.append(np.concatenate([luma, chroma], axis=0))
    return out


def make_clip(fmt: str = "MP4", width: int = 320, height: int = 240, seconds: float = 3.0,
              fps: int = 24, *, audio_seconds: float | None = None, bit_rate: int = 800_000,
              seed: int = 1, tags: dict[str, str] | None = None,
              stream_tags: dict[str, str] | None = None, rotation: int | None = None,
              moving: bool = True) -> bytes:
    """An H.264/AAC MP4 or a VP9/Opus WebM clip with a textured, panning picture."""
    buffer = io.BytesIO()
    container_format = "mp4" if fmt == "MP4" else "webm"
    with av.open(buffer, "w", format=container_format) as out:
        if tags:
            out.metadata.update(tags)
        codec = "libx264" if fmt == "MP4" else "libvpx-vp9"
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        video.bit_rate = bit_rate
        video.codec_context.thread_count = 1
        if fmt == "MP4":
            video.options = {"preset": "ultrafast"}
        else:
            video.options = {"deadline": "realtime", "cpu-used": "8"}
        if stream_tags:
            video.metadata.update(stream_tags)
        if rotation is not None:
            video.set_display_rotation(rotation)
        audio = None
        if audio_seconds:
            audio = out.add_stream("aac" if fmt == "MP4" else "libopus", rate=48_000,
                                   layout="stereo")
            audio.bit_rate = 96_000
            if stream_tags:
                audio.metadata.update(stream_tags)
        count = round(seconds * fps)
        for index, array in enumerate(frames(width, height, count, seed, moving=moving)):
            frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None and audio_seconds:
            rate = 48_000
            rng = np.random.default_rng(seed + 3)
            t = np.arange(round(audio_seconds * rate)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
            left = tone + 0.05 * rng.normal(size=t.size)
            right = 0.8 * tone + 0.05 * rng.normal(size=t.size)
            samples = np.stack([left, right]).astype(np.float32)
            step = 4800
            for start in range(0, samples.shape[1], step):
                chunk = np.ascontiguousarray(samples[:, start : start + step])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = rate
                frame.pts = start
                frame.time_base = Fraction(1, rate)
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return buffer.getvalue()
