"""The soundtrack carries the payload too, when it is long enough for the audio mark
(8 s): a 10-s clip's blind read names both carriers, and a read of its sound alone
(the picture replaced by an unmarked one) still finds the payload."""

from __future__ import annotations

import io
from functools import cache

import av

from tests.watermark.test_video_support import KEY, PAYLOAD
from tests.watermark.video_clips import make_clip
from watermark.video import embed_video_bytes, extract_video_bytes


@cache
def master() -> bytes:
    return make_clip("gradients", width=480, height=360, fps=24, seconds=10.0,
                     container="mp4", seed=41)


@cache
def marked() -> bytes:
    return embed_video_bytes(master(), KEY, PAYLOAD)


def swap_picture(sound_from: bytes, picture_from: bytes) -> bytes:
    """The packets of one file's audio with the other's video, remuxed."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(sound_from)) as sound, av.open(io.BytesIO(picture_from)) as pic, \
            av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        video = out.add_stream_from_template(pic.streams.video[0])
        audio = out.add_stream_from_template(sound.streams.audio[0])
        for packet in pic.demux(pic.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for packet in sound.demux(sound.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
    return buffer.getvalue()


def test_both_carriers_give_the_payload() -> None:
    result = extract_video_bytes(marked(), KEY)
    assert result.found
    assert result.payload == PAYLOAD
    assert result.evidence == ("picture", "audio")


def test_the_sound_alone_gives_the_payload() -> None:
    result = extract_video_bytes(swap_picture(marked(), master()), KEY)
    assert result.found
    assert result.payload == PAYLOAD
    assert result.evidence == ("audio",)
