"""Exceptions the agent and the tracer can catch by kind.

Every image the library refuses raises a subclass of `UnsupportedImageError`, so the agent can
record "not marked" in its receipt with one ``except`` clause, while a caller that cares can
still tell a decompression bomb from a truncated download. A copy that `embed` made but will
not hand over, because its own check found it damaged, raises `EmbedCheckError`.
"""

from __future__ import annotations


class WatermarkError(Exception):
    """Base class of every error this package raises on purpose."""


class UnsupportedImageError(WatermarkError, ValueError):
    """The image cannot be marked or read: unknown format, mode, animation, or the like."""


class ImageTooSmallError(UnsupportedImageError):
    """Too few pixels to carry the payload reliably (see `watermark.limits`)."""


class ImageTooLargeError(UnsupportedImageError):
    """More pixels than the configured limit: refused before decoding (decompression bombs)."""


class CorruptImageError(UnsupportedImageError):
    """The bytes do not decode to a whole image (truncated or damaged file)."""


class EmbedCheckError(WatermarkError):
    """`embed` refused to return its copy: the self-check found it damaged or unreadable.

    Raised instead of returning a copy whose PSNR against the input is below the floor, or
    from which a blind read does not give back the payload (a picture with no room for a
    mark, such as one that is saturated almost everywhere, or a defect). Not an
    `UnsupportedImageError`: the image was fine, the marking was not, and the agent
    records the copy as unmarked with the reason ``embed-failed``.
    """


class InvalidPayloadError(WatermarkError, ValueError):
    """The payload is not an integer in [0, 2**64)."""


class InvalidKeyError(WatermarkError, ValueError):
    """The key is not bytes, or too short to be a secret."""


class UnsupportedAudioError(WatermarkError, ValueError):
    """The audio cannot be marked or read: its shape, rate, channels or samples are not
    audio the library handles (the audio counterpart of `UnsupportedImageError`)."""


class AudioTooShortError(UnsupportedAudioError):
    """Too short to carry the whole payload; the message names the minimum."""


class CorruptAudioError(UnsupportedAudioError):
    """The bytes do not decode to whole audio: empty, truncated or damaged data."""


class AudioTooLargeError(UnsupportedAudioError):
    """Longer, faster or wider than the limits (`watermark.audio.codec`), read from the
    file's header and refused before its samples are decoded."""


class UnsupportedVideoError(WatermarkError, ValueError):
    """The video cannot be marked or read: a container, codec or stream layout the library
    does not handle (an MP4 that is not H.264/AAC, a WebM that is not VP9/Opus or VP8/
    Vorbis, an encrypted track, no picture at all)."""


class VideoTooShortError(UnsupportedVideoError):
    """Too few frames to carry the whole payload; the message names the minimum."""


class CorruptVideoError(UnsupportedVideoError):
    """The bytes do not decode to a whole video: empty, truncated or damaged data."""


class VideoTooLargeError(UnsupportedVideoError):
    """Larger, longer or faster than the limits (`watermark.video.limits`), read from the
    container before any frame is decoded."""


class UnsupportedDocumentError(WatermarkError, ValueError):
    """The document cannot be marked or read: not a PDF or EPUB the library handles
    (encrypted, with no page or no content document)."""


class CorruptDocumentError(UnsupportedDocumentError):
    """The bytes do not parse as a whole document: empty, truncated or damaged."""


class DocumentTooLargeError(UnsupportedDocumentError):
    """Beyond the limits (`watermark.document.pdf.limits`, `watermark.document.epub.limits`):
    too many pages or objects, nesting too deep, a stream or an archive member that
    inflates too far (a PDF or zip bomb)."""
