"""The marking rule: what copy of a master a licence's holder receives, and why.

One function, used by the buyer's agent to write the copy and by the platform's audit to
recompute it: if the two differed, every honest receipt would be flagged. Images,
recordings, videos (MP4, WebM) and documents (PDF, EPUB) the library marks get the
licence's payload; anything else, or a file the library will not mark, is the master
itself, with the reason in the receipt's closed vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from watermark.errors import (
    AudioTooShortError,
    EmbedCheckError,
    ImageTooSmallError,
    UnsupportedAudioError,
    UnsupportedDocumentError,
    UnsupportedImageError,
    UnsupportedVideoError,
    VideoTooShortError,
)
from watermark.formats import (
    MARKABLE_AUDIO_FORMATS,
    MARKABLE_DOCUMENT_FORMATS,
    MARKABLE_FORMATS,
    MARKABLE_VIDEO_FORMATS,
)

#: how far marking has come: (steps done, steps in all); a video's steps are its frames
Progress = Callable[[int, int], None]

#: media types the library marks, by the PIL format it reads them as
IMAGE_FORMATS: Final[Mapping[str, str]] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/webp": "WEBP",
}

#: media types the library marks as audio, by the format its audio codec sniffs (the
#: catalogue's sniffer gives audio/wav, audio/flac, audio/ogg and audio/mpeg)
AUDIO_FORMATS: Final[Mapping[str, str]] = {
    "audio/wav": "WAV",
    "audio/x-wav": "WAV",
    "audio/wave": "WAV",
    "audio/flac": "FLAC",
    "audio/x-flac": "FLAC",
    "audio/ogg": "OGG",
    "audio/vorbis": "OGG",
    "audio/mpeg": "MP3",
    "audio/mp3": "MP3",
}

#: media types the library marks as video (the catalogue's sniffer gives these two)
VIDEO_FORMATS: Final[Mapping[str, str]] = {
    "video/mp4": "MP4",
    "video/webm": "WEBM",
}

#: media types the library marks as documents
DOCUMENT_FORMATS: Final[Mapping[str, str]] = {
    "application/pdf": "PDF",
    "application/epub+zip": "EPUB",
}

#: a larger master is not decoded in memory to be marked (recorded as embed-failed);
#: the library refuses far smaller pixel counts anyway, and the audio codec refuses more
#: than 20 minutes of 48 kHz stereo (460 MB as a 32-bit WAV) from the file's header
MAX_MARKABLE_BYTES: Final = 512 << 20

UNSUPPORTED_FORMAT: Final = "unsupported-format"
TOO_SMALL: Final = "too-small"
EMBED_FAILED: Final = "embed-failed"


#: medium -> (media type -> format, the formats the library marks)
_MEDIA: Final = {
    "image": (IMAGE_FORMATS, MARKABLE_FORMATS),
    "audio": (AUDIO_FORMATS, MARKABLE_AUDIO_FORMATS),
    "video": (VIDEO_FORMATS, MARKABLE_VIDEO_FORMATS),
    "document": (DOCUMENT_FORMATS, MARKABLE_DOCUMENT_FORMATS),
}

#: how the rule and the agent name each medium to people
_KIND_NAMES: Final = {"image": "image", "audio": "recording", "video": "video",
                      "document": "document"}


def medium(content_type: str) -> str | None:
    """"image", "audio", "video" or "document" for a media type the library marks, else None."""
    base = content_type.split(";", 1)[0].strip().lower()
    for name, (types, markable) in _MEDIA.items():
        if types.get(base) in markable:
            return name
    return None


def markable_format(content_type: str) -> str | None:
    """The format the library reads a media type as, or None if it cannot mark it."""
    base = content_type.split(";", 1)[0].strip().lower()
    name = medium(base)
    return None if name is None else _MEDIA[name][0][base]


def is_audio(content_type: str) -> bool:
    """Whether the rule marks this media type as audio."""
    return medium(content_type) == "audio"


def marks(content_type: str, size: int) -> bool:
    """Whether the rule tries to mark a master of this media type and size at all.

    A master it does not try can be streamed through unchanged, never held in memory.
    """
    return markable_format(content_type) is not None and size <= MAX_MARKABLE_BYTES


def skipped_reason(content_type: str) -> tuple[str, str]:
    """Why the rule does not try to mark this master: a receipt reason and a sentence."""
    if markable_format(content_type) is None:
        return UNSUPPORTED_FORMAT, f"{content_type or 'this media type'} cannot be watermarked"
    kind = _KIND_NAMES[medium(content_type) or "image"]
    return EMBED_FAILED, f"the {kind} is too large to mark in memory"


@dataclass(frozen=True)
class Copy:
    """The bytes a licence's holder receives; `reason` is None when they carry the mark."""

    data: bytes
    reason: str | None = None
    detail: str = ""

    @property
    def marked(self) -> bool:
        return self.reason is None


def licensed_copy(master: bytes, content_type: str, key: bytes, payload: int, *,
                  progress: Progress | None = None) -> Copy:
    """The copy the rule gives for a master, a work's key and a licence's payload.

    A bad key or payload is not a property of the master: it raises (`InvalidKeyError`,
    `InvalidPayloadError`) rather than passing as a routine unmarked copy, which the
    platform's audit would then recompute and accept. ``progress`` hears how a long
    marking (a video's frames) comes along; it does not change the copy.
    """
    if not marks(content_type, len(master)):
        reason, detail = skipped_reason(content_type)
        return Copy(master, reason, detail)
    # Here, not at the top: numpy, Pillow, PyAV and the document libraries cost a
    # start-up that a copy which is not marked (most of a large work's bytes) should not pay.
    kind = medium(content_type)
    if kind == "audio":
        return _audio_copy(master, key, payload)
    if kind == "video":
        return _video_copy(master, key, payload, progress)
    if kind == "document":
        return _document_copy(master, markable_format(content_type) or "", key, payload)
    from watermark.codec import embed_bytes

    try:
        return Copy(embed_bytes(master, key, payload))
    except ImageTooSmallError as error:
        return Copy(master, TOO_SMALL, str(error))
    except UnsupportedImageError as error:
        return Copy(master, UNSUPPORTED_FORMAT, str(error))
    except EmbedCheckError as error:  # the marked copy failed embed's own check
        return Copy(master, EMBED_FAILED, str(error))


def _audio_copy(master: bytes, key: bytes, payload: int) -> Copy:
    from watermark.audio.codec import embed_audio_bytes

    try:
        return Copy(embed_audio_bytes(master, key, payload))
    except AudioTooShortError as error:
        return Copy(master, TOO_SMALL, str(error))
    except UnsupportedAudioError as error:  # CorruptAudioError, AudioTooLargeError too
        return Copy(master, UNSUPPORTED_FORMAT, str(error))
    except EmbedCheckError as error:  # digital silence, or a copy below the SNR floor
        return Copy(master, EMBED_FAILED, str(error))


def _video_copy(master: bytes, key: bytes, payload: int, progress: Progress | None) -> Copy:
    from watermark.video import embed_video_bytes

    try:
        return Copy(embed_video_bytes(master, key, payload, progress=progress))
    except VideoTooShortError as error:
        return Copy(master, TOO_SMALL, str(error))
    except UnsupportedVideoError as error:  # CorruptVideoError, VideoTooLargeError too
        return Copy(master, UNSUPPORTED_FORMAT, str(error))
    except EmbedCheckError as error:  # no room for the mark (a flat picture, say)
        return Copy(master, EMBED_FAILED, str(error))


def _document_copy(master: bytes, document_format: str, key: bytes, payload: int) -> Copy:
    try:
        if document_format == "PDF":
            from watermark.document.pdf import embed_pdf_bytes

            return Copy(embed_pdf_bytes(master, key, payload))
        from watermark.document.epub import embed_epub_bytes

        return Copy(embed_epub_bytes(master, key, payload))
    except UnsupportedDocumentError as error:  # corrupt, encrypted, or past the limits
        return Copy(master, UNSUPPORTED_FORMAT, str(error))
    except EmbedCheckError as error:  # nothing in it can carry the mark
        return Copy(master, EMBED_FAILED, str(error))
