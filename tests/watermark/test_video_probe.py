"""Probing and refusing videos: every bad input gets a clear error, never a damaged copy.

Each crafted input is small (a second or two at 160x128) and built by the test with a
known size, rate and codec; the expectations are those construction parameters.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import pytest

from tests.watermark.test_video_support import KEY, PAYLOAD, encode_clip
from watermark.errors import (
    CorruptVideoError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedVideoError,
    VideoTooLargeError,
    VideoTooShortError,
)
from watermark.video import embed_video_bytes, extract_video_bytes, probe_video, sniff_video


@cache
def mp4() -> bytes:
    return encode_clip("mp4", width=160, height=128, fps=24, frames=48, audio_codec="aac",
                       audio_seconds=2.0)


@cache
def webm() -> bytes:
    return encode_clip("webm", video_codec="libvpx-vp9", width=192, height=144, fps=25,
                       frames=50, audio_codec="libopus", audio_seconds=2.0)


def ebml(ident: int, body: bytes) -> bytes:
    """One EBML element with a one-byte... eight-byte size field (enough for the tests)."""
    head = ident.to_bytes((ident.bit_length() + 7) // 8, "big")
    return head + bytes([0x01]) + len(body).to_bytes(7, "big") + body


def test_sniff_names_the_two_formats_and_nothing_else() -> None:
    assert sniff_video(mp4()) == "MP4"
    assert sniff_video(webm()) == "WEBM"
    assert sniff_video(b"\x89PNG\r\n\x1a\n" + bytes(100)) is None
    assert sniff_video(b"") is None
    matroska = ebml(0x1A45DFA3, ebml(0x4282, b"matroska"))
    assert sniff_video(matroska) is None


def test_probe_reports_what_the_clip_was_made_with() -> None:
    info = probe_video(mp4())
    assert (info.format, info.width, info.height) == ("MP4", 160, 128)
    assert info.fps == pytest.approx(24.0)
    assert info.frames == 48
    assert info.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    info = probe_video(webm())
    assert (info.format, info.width, info.height) == ("WEBM", 192, 144)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")


def test_vp8_is_accepted_in_webm() -> None:
    # (the wheel has no Vorbis encoder to make the VP8 + Vorbis case with)
    data = encode_clip("webm", video_codec="libvpx", frames=30, audio_codec="libopus")
    info = probe_video(data)
    assert (info.video_codec, info.audio_codec) == ("vp8", "opus")


@pytest.mark.parametrize("data", [b"", b"\x00" * 10])
def test_empty_or_tiny_input_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedVideoError):
        probe_video(data)
    with pytest.raises(UnsupportedVideoError):
        embed_video_bytes(data, KEY, PAYLOAD)


def test_empty_input_is_corrupt() -> None:
    with pytest.raises(CorruptVideoError):
        probe_video(b"")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_mp4_is_corrupt(keep: float) -> None:
    data = mp4()
    with pytest.raises(CorruptVideoError):
        embed_video_bytes(data[: int(len(data) * keep)], KEY, PAYLOAD)


@pytest.mark.parametrize("keep", [0.02, 0.5])
def test_truncated_webm_is_refused(keep: float) -> None:
    data = webm()
    with pytest.raises(UnsupportedVideoError):
        embed_video_bytes(data[: int(len(data) * keep)], KEY, PAYLOAD)


def test_damaged_media_data_is_refused_or_marked_whole() -> None:
    data = bytearray(mp4())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(2000)
    try:
        marked = embed_video_bytes(bytes(data), KEY, PAYLOAD)
    except UnsupportedVideoError:
        return
    # FFmpeg conceals a damaged slice; if it did, the copy must be a whole video
    assert probe_video(marked).frames == 48


@pytest.mark.parametrize(("fmt", "codec", "audio"), [
    ("mp4", "mpeg4", None),
    ("mp4", "libx265", None),
    ("mp4", "libx264", "ac3"),
    ("mp4", "libvpx-vp9", None),
])
def test_other_codecs_are_unsupported(fmt: str, codec: str, audio: str | None) -> None:
    data = encode_clip(fmt, video_codec=codec, frames=30, audio_codec=audio)
    with pytest.raises(UnsupportedVideoError) as caught:
        probe_video(data)
    assert not isinstance(caught.value, CorruptVideoError)


def test_audio_only_file_is_refused() -> None:
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48_000)
        stream.layout = "stereo"
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=48_000)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 48_000
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(UnsupportedVideoError, match="no video"):
        probe_video(buffer.getvalue())


def test_encrypted_mp4_track_is_refused() -> None:
    data = mp4()
    # the H.264 sample entry renamed to the protected one ('encv'), as CENC does
    entry = data.index(b"avc1", data.index(b"stsd"))
    encrypted = data[:entry] + b"encv" + data[entry + 4 :]
    with pytest.raises(UnsupportedVideoError, match="encrypted"):
        probe_video(encrypted)
    with pytest.raises(UnsupportedVideoError, match="encrypted"):
        embed_video_bytes(encrypted, KEY, PAYLOAD)


def test_pssh_box_is_refused() -> None:
    data = mp4()
    box = (8 + 24).to_bytes(4, "big") + b"pssh" + bytes(24)
    start = data.index(b"moov") - 4
    size = int.from_bytes(data[start : start + 4], "big")
    moov = (size + len(box)).to_bytes(4, "big") + data[start + 4 : start + size] + box
    with pytest.raises(UnsupportedVideoError, match="encrypted"):
        probe_video(data[:start] + moov + data[start + size :])


def test_encrypted_webm_track_is_refused() -> None:
    header = ebml(0x1A45DFA3, ebml(0x4282, b"webm"))
    encryption = ebml(0x6D80, ebml(0x6240, ebml(0x5035, ebml(0x47E1, b"\x05"))))
    track = ebml(0xAE, ebml(0xD7, b"\x01") + ebml(0x86, b"V_VP9") + encryption)
    data = header + ebml(0x18538067, ebml(0x1654AE6B, track))
    assert sniff_video(data) == "WEBM"
    with pytest.raises(UnsupportedVideoError, match="encrypted"):
        probe_video(data)


def test_too_large_picture_is_refused_before_decoding() -> None:
    data = encode_clip("mp4", width=4096, height=2160, frames=2)
    with pytest.raises(VideoTooLargeError):
        probe_video(data)


def test_too_fast_is_refused() -> None:
    data = encode_clip("mp4", fps=240, frames=30)
    with pytest.raises(VideoTooLargeError):
        probe_video(data)


def test_too_long_is_refused() -> None:
    # 30 frames ten minutes apart: five hours of video in a few kilobytes
    data = encode_clip("mp4", fps=Fraction(1, 600), frames=30)
    with pytest.raises(VideoTooLargeError):
        probe_video(data)


def test_too_short_is_refused() -> None:
    with pytest.raises(VideoTooShortError):
        probe_video(encode_clip("mp4", frames=10))
    with pytest.raises(VideoTooShortError):
        embed_video_bytes(encode_clip("mp4", frames=10), KEY, PAYLOAD)


def test_small_or_odd_pictures_are_refused() -> None:
    with pytest.raises(UnsupportedVideoError):
        probe_video(encode_clip("mp4", width=96, height=96, frames=30))


def test_bad_key_and_payload() -> None:
    with pytest.raises(InvalidKeyError):
        embed_video_bytes(mp4(), b"short", PAYLOAD)
    with pytest.raises(InvalidPayloadError):
        embed_video_bytes(mp4(), KEY, 1 << 64)
    with pytest.raises(InvalidKeyError):
        extract_video_bytes(mp4(), b"short")


def test_reading_garbage_is_refused() -> None:
    with pytest.raises(UnsupportedVideoError):
        extract_video_bytes(b"not a video at all", KEY)
    with pytest.raises(UnsupportedVideoError):
        extract_video_bytes(mp4()[: len(mp4()) // 3], KEY)


def test_pictures_that_are_not_8_bit_4_2_0_are_refused() -> None:
    # H.264 in 4:4:4 and 4:2:2: marking them would need swscale, whose output differs
    # between CPUs
    import io

    import av
    import numpy as np

    for pix_fmt in ("yuv444p", "yuv422p"):
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 160, 128, pix_fmt
            stream.codec_context.thread_count = 1
            for index in range(30):
                picture = np.full((128, 160, 3), 40 + index * 4, np.uint8)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                    format=pix_fmt)
                frame.pts = index
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        data = buffer.getvalue()
        with av.open(io.BytesIO(data)) as check:
            assert check.streams.video[0].codec_context.format.name == pix_fmt
        with pytest.raises(UnsupportedVideoError, match="8-bit 4:2:0 only"):
            probe_video(data)
        with pytest.raises(UnsupportedVideoError, match="8-bit 4:2:0 only"):
            embed_video_bytes(data, KEY, PAYLOAD)


def test_length_guard_limits() -> None:
    from watermark.video import limits
    from watermark.video.probe import LengthGuard

    frames, fps, seconds = 48, 24.0, 2.0
    guard = LengthGuard(frames, fps, seconds)
    most = int(frames * 1.1 + fps)  # 76.8: 76 frames pass, 77 do not
    guard.check(most, None)
    with pytest.raises(VideoTooLargeError):
        guard.check(most + 1, None)
    guard.check(1, seconds * 1.1 + 1.0)
    with pytest.raises(VideoTooLargeError):
        guard.check(1, seconds * 1.1 + 1.0 + 0.01)
    unknown = LengthGuard(0, fps, 0.0)  # a header that states no length: the hard limit
    unknown.check(1, limits.MAX_SECONDS)
    with pytest.raises(VideoTooLargeError):
        unknown.check(1, limits.MAX_SECONDS * 1.1 + 1.0 + 0.01)


def test_a_video_longer_than_its_container_states_is_refused_while_decoding() -> None:
    # a WebM of 100 frames at 25 fps (4 s) whose segment says 1.2 s (30 frames): the
    # header passes the limits, so the refusal must come from the decode
    import struct

    frames, fps, stated = 100, 25, 1.2
    data = encode_clip("webm", video_codec="libvpx", width=160, height=128, fps=fps,
                       frames=frames)
    at = data.find(b"\x44\x89\x88")  # Info/Duration, an 8-byte float in milliseconds
    assert at > 0
    assert struct.unpack(">d", data[at + 3 : at + 11])[0] == frames * 1000 / fps
    lying = data[: at + 3] + struct.pack(">d", stated * 1000) + data[at + 11 :]
    info = probe_video(lying)
    assert info.duration_seconds == pytest.approx(stated)
    assert info.frames * 1.1 + fps < frames
    with pytest.raises(VideoTooLargeError):
        embed_video_bytes(lying, KEY, PAYLOAD)
    with pytest.raises(VideoTooLargeError):
        extract_video_bytes(data, KEY, reference=lying)


def test_library_errors_become_corrupt_video_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # a ValueError in the encoder thread (as PyAV raises for a bad packet) is re-raised
    # as CorruptVideoError, never raw
    from watermark.video import codec

    def broken(*_: object) -> None:
        raise ValueError("bad packet")

    monkeypatch.setattr(codec, "_mux_until", broken)
    with pytest.raises(CorruptVideoError, match="bad packet") as caught:
        embed_video_bytes(mp4(), KEY, PAYLOAD)
    assert isinstance(caught.value.__cause__, ValueError)
