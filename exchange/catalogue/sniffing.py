"""Decide what an uploaded file is from its bytes, never from its name or the client's word.

Images are also opened with Pillow, videos probed with the video mark's own checks
(container, codecs, encryption, size and length limits), and PDFs and EPUBs checked by
the document marks' parsers (truncation, encryption, object and zip bombs), so a file
the buyer's agent could not mark, or one built to exhaust it, is refused at the door
instead of failing later inside a task or on a buyer's machine.
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
    elif sniffed.media_type in (MediaType.VIDEO, MediaType.DOCUMENT):
        _check_markable(stream, sniffed.content_type)
    return sniffed


def _check_markable(stream: BinaryIO, content_type: str) -> None:
    """Run the marking library's own check of a video, PDF or EPUB on the whole file."""
    from watermark.errors import WatermarkError

    try:
        data = stream.read()
    finally:
        stream.seek(0)
    try:
        if content_type in ("video/mp4", "video/webm"):
            from watermark.video import probe_video

            probe_video(data)
        elif content_type == "application/pdf":
            from watermark.document.pdf import check_pdf

            check_pdf(data)
        else:
            from watermark.document.epub import check_epub

            check_epub(data)
    except WatermarkError as exc:
        raise UnsupportedFileError(
            _("This file cannot be sold: %(error)s") % {"error": exc}) from exc


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
