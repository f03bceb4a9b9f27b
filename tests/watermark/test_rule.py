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
     ("image/webp", "WEBP"), ("image/gif", None), ("audio/mpeg", None), ("", None)],
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
        ("audio/mpeg", None, "unsupported-format"),
        ("image/png", Image.new("RGB", (40, 40)), "too-small"),
        ("image/png", "not an image", "unsupported-format"),
        ("image/png", "checkerboard", "embed-failed"),
    ],
)
def test_anything_else_is_the_master_itself_with_the_reason(
    content_type: str, image: object, reason: str
) -> None:
    if image is None:
        master = b"ID3" + bytes(range(256)) * 10
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
