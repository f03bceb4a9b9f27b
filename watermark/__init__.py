"""Keyed, invisible, robust watermarking of images with a 64-bit payload.

A pure library (numpy and Pillow): the buyer's agent marks each delivered copy with the
payload its licence names (`embed_bytes`, or `embed` on a PIL image), and the platform's
tracer reads a suspect copy with the work's key, informed by the master (`extract`).
docs/WATERMARK.md explains the method and its limits.
"""

from watermark.codec import MARKABLE_FORMATS, embed_bytes, extract_bytes, open_image
from watermark.embed import embed
from watermark.errors import (
    CorruptImageError,
    EmbedCheckError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedImageError,
    WatermarkError,
)
from watermark.extract import ExtractResult, extract
from watermark.params import DEFAULT as DEFAULT_PARAMS
from watermark.params import Params
from watermark.payload import PAYLOAD_BITS
from watermark.register import Alignment

__all__ = [
    "DEFAULT_PARAMS",
    "MARKABLE_FORMATS",
    "PAYLOAD_BITS",
    "Alignment",
    "CorruptImageError",
    "EmbedCheckError",
    "ExtractResult",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidKeyError",
    "InvalidPayloadError",
    "Params",
    "UnsupportedImageError",
    "WatermarkError",
    "embed",
    "embed_bytes",
    "extract",
    "extract_bytes",
    "open_image",
]
