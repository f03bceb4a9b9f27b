"""The issue's attack table in cheap forms: each attack of tests/watermark/video_attacks.py
once, on a 4-s 640x360 MP4 of the corpus's generated gradients, read blind (the crop
informed, with the master). The benchmark (benchmarks/video/run.py) runs the full table
on longer clips, real material and several keys; this only guards against regressions.
"""

from __future__ import annotations

from functools import cache

import pytest

from tests.watermark import video_attacks as attacks
from tests.watermark.test_video_support import KEY, PAYLOAD
from tests.watermark.video_clips import make_clip
from watermark.video import embed_video_bytes, extract_video_bytes


@cache
def master() -> bytes:
    return make_clip("gradients", width=640, height=360, fps=30, seconds=4.0,
                     container="mp4", seed=31)


@cache
def marked() -> bytes:
    return embed_video_bytes(master(), KEY, PAYLOAD)


BLIND = {
    "h264 at half the bit rate": attacks.reencode_h264,
    "vp9 re-encode": attacks.reencode_vp9,
    "downscale to 240p": lambda data: attacks.downscale(data, height=240),
    "excerpt of 3 s, not on a key frame": lambda data: attacks.excerpt(data, 0.5, 3.0),
    "30 to 25 fps": attacks.change_fps,
}


@pytest.mark.parametrize("name", list(BLIND))
def test_blind_read_after(name: str) -> None:
    result = extract_video_bytes(BLIND[name](marked()), KEY)
    assert result.found
    assert result.payload == PAYLOAD
    assert "picture" in result.evidence


def test_informed_read_after_crop_downscale_and_reencode() -> None:
    suspect = attacks.crop_downscale(marked(), keep=0.9, height=240)
    result = extract_video_bytes(suspect, KEY, reference=master())
    assert result.found
    assert result.payload == PAYLOAD
    assert result.informed
    assert result.alignment is not None
    assert result.alignment.scale == pytest.approx(240 / (360 * 0.9), rel=0.03)


def test_informed_read_of_an_unmarked_copy_finds_nothing() -> None:
    suspect = attacks.crop_downscale(master(), keep=0.9, height=240)
    result = extract_video_bytes(suspect, KEY, reference=master())
    assert not result.found
    assert result.payload is None
