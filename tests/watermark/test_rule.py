"""The marking rule the agent applies and the platform's audit recomputes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.watermark.conftest import KEY, PAYLOAD
from watermark import extract_bytes
from watermark.rule import MAX_MARKABLE_BYTES, licensed_copy, markable_format, marks


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("image/png", "PNG"), ("IMAGE/JPEG; charset=x", "JPEG"), ("image/pjpeg", "JPEG"),
     ("image/webp", "WEBP"), ("image/gif", None), ("audio/mpeg", "MP3"), ("audio/mp3", "MP3"),
     ("audio/flac", "FLAC"), ("audio/x-flac", "FLAC"), ("audio/ogg", "OGG"),
     ("audio/vorbis", "OGG"), ("audio/wav", "WAV"), ("audio/x-wav", "WAV"),
     ("audio/wave", "WAV"), ("audio/aac", None), ("video/mp4", "MP4"),
     ("Video/WebM", "WEBM"), ("video/quicktime", None), ("application/pdf", "PDF"),
     ("application/epub+zip", "EPUB"), ("application/zip", None), ("", None)],
)
def test_the_media_types_it_marks(content_type: str, expected: str | None) -> None:
    assert markable_format(content_type) == expected


def test_a_master_too_large_to_hold_in_memory_is_not_tried() -> None:
    assert marks("image/png", MAX_MARKABLE_BYTES)
    assert not marks("image/png", MAX_MARKABLE_BYTES + 1)


def test_a_markable_image_comes_back_marked(photo: Image.Image) -> None:
    copy = licensed_copy(_png(photo), "image/png", KEY, PAYLOAD)
    assert (copy.marked, copy.reason) == (True, None)
    assert extract_bytes(copy.data, KEY).payload == PAYLOAD


@pytest.mark.parametrize(
    ("content_type", "image", "reason"),
    [
        ("video/mp4", None, "unsupported-format"),
        ("image/png", Image.new("RGB", (40, 40)), "too-small"),
        ("image/png", "not an image", "unsupported-format"),
        ("image/png", "checkerboard", "embed-failed"),
    ],
)
def test_anything_else_is_the_master_itself_with_the_reason(
    content_type: str, image: object, reason: str
) -> None:
    if image is None:
        master = b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 10
    elif image == "not an image":
        master = b"\x89PNG\r\n\x1a\n" + bytes(200)
    elif image == "checkerboard":
        y, x = np.mgrid[0:320, 0:384]
        master = _png(Image.fromarray(((x // 16 + y // 16) % 2 * 255).astype(np.uint8), "L"))
    else:
        assert isinstance(image, Image.Image)
        master = _png(image)

    copy = licensed_copy(master, content_type, KEY, PAYLOAD)

    assert (copy.data, copy.marked, copy.reason) == (master, False, reason)
    assert copy.detail


def test_a_bad_key_or_payload_raises_instead_of_passing_as_unmarked(photo: Image.Image) -> None:
    from watermark import InvalidKeyError, InvalidPayloadError

    master = _png(photo)
    with pytest.raises(InvalidKeyError):
        licensed_copy(master, "image/png", b"short", PAYLOAD)
    with pytest.raises(InvalidPayloadError):
        licensed_copy(master, "image/png", KEY, -1)


def test_the_rule_imports_no_numpy_until_it_marks() -> None:
    import subprocess
    import sys

    code = ("import sys, watermark.rule as r; r.marks('audio/mpeg', 10); "
            "r.skipped_reason('audio/flac'); print('numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_a_recording_comes_back_marked_in_its_own_format() -> None:
    from tests.watermark.audio_files import song_file
    from watermark.audio.codec import extract_audio_bytes

    copy = licensed_copy(song_file("FLAC", 10.0), "audio/flac", KEY, PAYLOAD)
    assert (copy.marked, copy.reason) == (True, None)
    assert copy.data.startswith(b"fLaC")
    assert extract_audio_bytes(copy.data, KEY).payload == PAYLOAD


@pytest.mark.parametrize(
    ("content_type", "master", "reason", "words"),
    [
        ("audio/wav", "3 s", "too-small", "at least 8 s"),
        ("audio/mpeg", "truncated", "unsupported-format", "truncated"),
        ("audio/ogg", "not audio", "unsupported-format", "not a WAV, FLAC"),
        ("audio/flac", "silence", "embed-failed", ""),
    ],
)
def test_a_recording_it_will_not_mark_is_the_master_with_the_reason(
    content_type: str, master: str, reason: str, words: str
) -> None:
    from tests.watermark.audio_clips import music
    from tests.watermark.audio_files import encoded, song_file

    data = {
        "3 s": lambda: encoded("WAV", music(3.0)),
        "truncated": lambda: song_file("MP3", 10.0)[:50_000],
        "not audio": lambda: bytes(range(256)) * 40,
        "silence": lambda: encoded("FLAC", np.zeros((441_000, 2), np.float32)),
    }[master]()

    copy = licensed_copy(data, content_type, KEY, PAYLOAD)

    assert (copy.data, copy.marked, copy.reason) == (data, False, reason)
    assert words in copy.detail
    assert "image" not in copy.detail


def test_a_recording_too_large_to_hold_is_skipped_without_saying_image() -> None:
    from watermark.rule import skipped_reason

    reason, detail = skipped_reason("audio/mpeg")
    assert reason == "embed-failed"
    assert "image" not in detail
