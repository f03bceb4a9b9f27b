"""Decide what an uploaded file is from its bytes, never from its name or the client's word.

Images are also opened with Pillow, so a truncated file or a decompression bomb is
refused at the door instead of failing later inside a task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from exchange.catalogue.models import MediaType

# Below Pillow's own bomb warning (about 89 Mpx), so its global limit never has to change.
MAX_IMAGE_PIXELS = 80_000_000


class UnsupportedFileError(ValueError):
    pass


@dataclass(frozen=True)
class Sniffed:
    media_type: str
    content_type: str


def _match(head: bytes) -> Sniffed | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(MediaType.IMAGE, "image/png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(MediaType.IMAGE, "image/jpeg")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(MediaType.IMAGE, "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed(MediaType.AUDIO, "audio/wav")
    if head.startswith(b"fLaC"):
        return Sniffed(MediaType.AUDIO, "audio/flac")
    if head.startswith(b"OggS"):
        return Sniffed(MediaType.AUDIO, "audio/ogg")
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return Sniffed(MediaType.AUDIO, "audio/mpeg")
    if head[4:8] == b"ftyp":
        return Sniffed(MediaType.VIDEO, "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed(MediaType.VIDEO, "video/webm")
    if head.startswith(b"%PDF-"):
        return Sniffed(MediaType.DOCUMENT, "application/pdf")
    if head.startswith(b"PK\x03\x04") and head[30:58] == b"mimetypeapplication/epub+zip":
        return Sniffed(MediaType.DOCUMENT, "application/epub+zip")
    return None


SUPPORTED_DESCRIPTION = "PNG, JPEG, WebP, WAV, FLAC, Ogg, MP3, MP4, WebM, PDF or EPUB"


def sniff_upload(stream: BinaryIO) -> Sniffed:
    stream.seek(0)
    head = stream.read(64)
    stream.seek(0)
    sniffed = _match(head)
    if sniffed is None:
        raise UnsupportedFileError(_("Unsupported file type; upload %(formats)s.")
                                   % {"formats": SUPPORTED_DESCRIPTION})
    if sniffed.media_type == MediaType.IMAGE:
        _check_image(stream)
    return sniffed


def _check_image(stream: BinaryIO) -> None:
    try:
        with Image.open(stream) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnsupportedFileError(
                    f"Image is {width}x{height}; at most {MAX_IMAGE_PIXELS:,} pixels are accepted."
                )
            image.verify()
        stream.seek(0)
        with Image.open(stream) as image:
            image.load()  # verify() does not decode pixels: a truncated body shows only here
    except UnsupportedFileError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise UnsupportedFileError(_("The image is damaged or truncated (%(error)s).")
                                   % {"error": exc}) from exc
    finally:
        stream.seek(0)
