"""The video benchmark's attacks do what they say: size, rate, length, codecs and content,
checked on a tiny generated clip (3 s of 320x180 at 30 fps)."""

from __future__ import annotations

import io
from functools import cache

import av
import numpy as np
import pytest

from tests.watermark import video_attacks as attacks
from tests.watermark.video_clips import make_clip


@cache
def clip(container: str = "mp4") -> bytes:
    return make_clip("gradients", width=320, height=180, fps=30, seconds=3.0,
                     container=container, seed=3)  # type: ignore[arg-type]


def audio_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as source:
        stream = source.streams.audio[0]
        return sum(frame.samples for frame in source.decode(stream)) / stream.rate


def closest(frame: np.ndarray, frames: np.ndarray) -> int:
    """The index of the frame of `frames` nearest to `frame` (mean squared error)."""
    errors = ((frames.astype(np.float64) - frame) ** 2).mean(axis=(1, 2))
    return int(np.argmin(errors))


def test_the_clip_is_what_the_corpus_says() -> None:
    info = attacks.info(clip())
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 320, 180)
    assert (info.fps, info.frames, info.seconds, info.audio) == (30, 90, 3.0, True)


def test_h264_reencode_halves_the_bit_rate_and_keeps_the_rest() -> None:
    source = attacks.info(clip("webm"))
    copy = attacks.reencode_h264(clip("webm"))
    info = attacks.info(copy)
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 320, 180)
    assert (info.fps, info.frames) == (30, 90)
    assert 0.3 < info.video_bitrate / source.video_bitrate < 0.75
    assert 25 < attacks.psnr(clip("webm"), copy) < 60


def test_vp9_reencode_writes_webm_with_opus() -> None:
    copy = attacks.reencode_vp9(clip())
    info = attacks.info(copy)
    assert (info.container, info.codec, info.width, info.height) == ("webm", "vp9", 320, 180)
    assert (info.fps, info.frames, info.audio_rate) == (30, 90, 48_000)
    assert audio_seconds(copy) == pytest.approx(3.0, abs=0.1)
    assert attacks.ssim(clip(), copy) > 0.6


def test_downscale_keeps_the_aspect_and_the_frames() -> None:
    info = attacks.info(attacks.downscale(clip(), height=120))
    assert (info.width, info.height, info.fps, info.frames) == (214, 120, 30, 90)


def test_excerpt_starts_mid_gop_at_the_asked_time_and_lasts_as_asked() -> None:
    source = attacks.frames_luma(clip())
    copy = attacks.excerpt(clip(), 0.5, 1.5)
    info = attacks.info(copy)
    assert (info.frames, info.seconds, info.fps) == (45, 1.5, 30)
    assert audio_seconds(copy) == pytest.approx(1.5, abs=0.1)
    frames = attacks.frames_luma(copy)
    assert closest(frames[0], source) == 15  # 0.5 s into the clip
    assert closest(frames[-1], source) == 59
    # 2.0 s is a key frame of the clip (2 s GOP): the excerpt starts one frame later
    assert 2.0 in attacks.info(clip()).keyframes
    later = attacks.frames_luma(attacks.excerpt(clip(), 2.0, 0.5))
    assert closest(later[0], source) == 61


def test_change_fps_drops_frames_by_timestamp() -> None:
    source = attacks.frames_luma(clip())
    copy = attacks.change_fps(clip(), fps=25)
    info = attacks.info(copy)
    assert (info.fps, info.frames, info.seconds) == (25, 75, 3.0)
    frames = attacks.frames_luma(copy)
    for k in (0, 1, 2, 5, 37, 74):  # output time k/25 shows source frame floor(k*30/25)
        assert closest(frames[k], source) == (k * 6) // 5


def test_crop_downscale_keeps_the_centre() -> None:
    copy = attacks.crop_downscale(clip(), keep=0.9, height=120)
    info = attacks.info(copy)
    assert (info.width, info.height, info.frames) == (214, 120, 90)
    # the same crop and scale done here on the decoded source matches the copy
    reference = av.open(io.BytesIO(clip()))
    frame = next(reference.decode(video=0))
    reference.close()
    rgb = frame.to_ndarray(format="rgb24")[9:171, 16:304]  # 288 x 162, the centre
    expected = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
        width=214, height=120, format="yuv420p", interpolation="BICUBIC").to_ndarray()[:120]
    got = attacks.frames_luma(copy, max_frames=1)[0]
    mse = np.mean((got.astype(np.float64) - expected) ** 2)
    assert 10 * np.log10(255**2 / mse) > 27


def test_psnr_and_ssim_of_a_clip_with_itself() -> None:
    assert attacks.psnr(clip(), clip()) == float("inf")
    assert attacks.ssim(clip(), clip(), every=10) == pytest.approx(1.0)
    assert attacks.frames_luma(clip(), max_frames=4).shape == (4, 180, 320)
