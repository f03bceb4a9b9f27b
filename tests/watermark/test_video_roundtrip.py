"""Marking a video and reading it back: the copy keeps what the master was (container,
codecs, size, rate, timestamps, tags, rotation) and carries the payload, read blind.

Clips come from the corpus (tests/watermark/video_clips.py): 640x360 generated
gradients, a few seconds, MP4 (H.264 + AAC) and WebM (VP9 + Opus). Expected values are
the clips' construction parameters or measurements of the master itself, never values
the library computed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import _skip_or_fail
from tests.watermark import video_attacks
from tests.watermark.test_video_support import KEY, OTHER_KEY, PAYLOAD, remux
from tests.watermark.video_clips import make_clip
from watermark.video import embed_video_bytes, extract_video_bytes, probe_video

ROOT = Path(__file__).resolve().parents[2]


@cache
def master(container: str) -> bytes:
    return make_clip("gradients", width=640, height=360, fps=30, seconds=2.0,
                     container=container, seed=21)  # type: ignore[arg-type]


@cache
def marked(container: str) -> bytes:
    return embed_video_bytes(master(container), KEY, PAYLOAD)


def stamps(data: bytes) -> list[Fraction]:
    """Every video frame's presentation time, as exact fractions of a second."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return [Fraction(packet.pts) * stream.time_base
                for packet in container.demux(stream) if packet.pts is not None]


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_blind_read_gives_the_payload(container: str) -> None:
    result = extract_video_bytes(marked(container), KEY)
    assert result.found
    assert result.payload == PAYLOAD
    assert "picture" in result.evidence
    assert not result.informed


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_copy_keeps_format_size_rate_length_and_timestamps(container: str) -> None:
    copy, original = probe_video(marked(container)), probe_video(master(container))
    assert copy.format == original.format == container.upper()
    assert (copy.width, copy.height) == (640, 360)
    assert copy.fps == pytest.approx(30.0)
    assert copy.frames == original.frames == 60
    assert copy.duration_seconds == pytest.approx(original.duration_seconds, abs=0.04)
    assert sorted(stamps(marked(container))) == sorted(stamps(master(container)))
    expected = {"mp4": ("h264", "aac"), "webm": ("vp9", "opus")}[container]
    assert (copy.video_codec, copy.audio_codec) == expected


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_quality_and_size(container: str) -> None:
    # The floor is below the mark's own 40 dB because the copy is also re-encoded at the
    # master's bit rate: on this clip, the same re-encode without a mark measured 40.3 dB
    # and SSIM 0.948 (MP4), 41.7 dB and 0.970 (WebM); with the mark 39.8 / 0.942 and
    # 40.7 / 0.963 (docs/WATERMARK.md, "Video").
    assert video_attacks.psnr(master(container), marked(container)) >= 38.0
    assert video_attacks.ssim(master(container), marked(container), every=10) >= 0.93
    ratio = len(marked(container)) / len(master(container))
    assert 0.7 <= ratio <= 1.35


def test_soundtrack_is_kept() -> None:
    def seconds(data: bytes) -> float:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            return sum(frame.samples for frame in container.decode(stream)) / stream.rate

    # 2 s of sound is too short for the audio mark: re-encoded unmarked, same length
    assert seconds(marked("mp4")) == pytest.approx(seconds(master("mp4")), abs=0.05)


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_other_key_and_unmarked_read_no_mark(container: str) -> None:
    for data, key in ((marked(container), OTHER_KEY), (master(container), KEY)):
        result = extract_video_bytes(data, key)
        assert not result.found
        assert result.payload is None
        assert result.evidence == ()


def test_tags_and_rotation_are_kept() -> None:
    tagged = remux(master("mp4"), tags={"title": "Sunset over the bay", "comment": "take 2"},
                   stream_tags={"language": "fra"}, rotation=90)
    copy = embed_video_bytes(tagged, KEY, PAYLOAD)
    with av.open(io.BytesIO(copy)) as container:
        assert container.metadata.get("title") == "Sunset over the bay"
        assert container.metadata.get("comment") == "take 2"
        assert "creation_time" not in container.metadata
        for stream in container.streams:
            assert stream.metadata.get("language") == "fra"
        frame = next(container.decode(video=0))
        assert frame.rotation == 90


def test_progress_is_reported_up_to_the_last_frame() -> None:
    calls: list[tuple[int, int]] = []
    embed_video_bytes(master("webm"), KEY, PAYLOAD, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (60, 60)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert all(total >= d for d, total in calls)
    # at most ten a second: far fewer calls than frames on any machine this test runs on
    assert 2 <= len(calls) < 60


SCRIPT = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from watermark.video import embed_video_bytes
with open(sys.argv[2], "rb") as master:
    data = master.read()
print(hashlib.sha256(embed_video_bytes(data, bytes(range(32)), 12345)).hexdigest())
"""


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_same_bytes_in_separate_processes_and_on_one_core(container: str,
                                                          tmp_path: Path) -> None:
    # The master is made here once and handed over as a file: the clip generator is not
    # the code under test (and its bytes are not the same on one core and on two).
    path = tmp_path / f"master.{container}"
    path.write_bytes(master(container))
    command = [sys.executable, "-c", SCRIPT, str(ROOT), str(path)]
    taskset = shutil.which("taskset")
    if taskset is None:
        _skip_or_fail("needs taskset (util-linux) for the one-core run")
    assert taskset is not None
    # one core visible: FFmpeg's and x264's automatic thread counts would follow it
    commands = [command, [taskset, "-c", "0", *command]]
    digests = {subprocess.run(argv, check=True, capture_output=True, text=True,
                              cwd=ROOT).stdout.strip() for argv in commands}
    assert digests == {hashlib.sha256(embed_video_bytes(master(container), bytes(range(32)),
                                                        12345)).hexdigest()}


def test_marked_luma_differs_only_slightly_per_frame() -> None:
    frames_master = video_attacks.frames_luma(master("mp4"), 10).astype(np.float64)
    frames_copy = video_attacks.frames_luma(marked("mp4"), 10).astype(np.float64)
    worst = max(float(np.abs(a - b).mean()) for a, b in zip(frames_master, frames_copy,
                                                              strict=True))
    assert worst < 3.0


def test_full_range_video_stays_full_range() -> None:
    # a phone's H.264: full-range ("JPEG") levels; converting them to video range would
    # change every pixel's level, and losing the flag would make players stretch them
    buffer = io.BytesIO()
    with av.open(io.BytesIO(master("mp4"))) as source, av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuvj420p"
        stream.bit_rate = 1_500_000
        for frame in source.decode(video=0):
            full = frame.reformat(format="yuvj420p")
            full.pts, full.time_base = frame.pts, frame.time_base
            out.mux(stream.encode(full))
        out.mux(stream.encode(None))
    data = buffer.getvalue()
    copy = embed_video_bytes(data, KEY, PAYLOAD)
    with av.open(io.BytesIO(copy)) as container:
        frame = next(container.decode(video=0))
        assert frame.color_range == 2  # AVCOL_RANGE_JPEG
    levels = [float(np.mean(video_attacks.frames_luma(clip, 5))) for clip in (data, copy)]
    assert levels[1] == pytest.approx(levels[0], abs=1.0)


def test_a_short_smooth_clip_whose_first_frames_fall_short_is_still_marked() -> None:
    """With this key, the first 60 frames of this 3-s, 320x180 gradient clip read back
    short of the payload (1 key in 30 did, for this clip); the whole copy reads it. The
    self-check reads the whole clip before refusing, so the buyer gets a marked copy."""
    clip = make_clip("gradients", width=320, height=180, fps=30, seconds=3.0, seed=8)
    key = hashlib.sha256(b"k11").digest()
    copy = embed_video_bytes(clip, key, PAYLOAD)
    read = extract_video_bytes(copy, key)
    assert (read.found, read.payload) == (True, PAYLOAD)
