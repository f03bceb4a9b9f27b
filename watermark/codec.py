"""Bytes in, bytes out: what the agent calls on a decrypted file, with safe limits.

Decoding is where untrusted input meets a C library, so it is fenced: only the formats the
library marks (PNG, JPEG, WebP; a suspect may also be BMP, GIF or TIFF) are even parsed, the
pixel count is checked from the header before any pixel is decoded (a decompression bomb is
refused, not inflated), and a file that does not decode to a whole image is refused rather
than half-read (PIL's LOAD_TRUNCATED_IMAGES is never set).

Encoding keeps the master's format: PNG losslessly; JPEG at `jpeg_quality` (95 by default)
with the original chroma subsampling, ICC profile and EXIF (orientation stays right because
the stored pixels are marked, not the displayed ones); WebP losslessly if the master was
lossless, else at `webp_quality`. Palette PNGs come back as RGB or RGBA PNGs (see `planes`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from watermark.embed import embed
from watermark.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from watermark.extract import ExtractResult, extract
from watermark.formats import MARKABLE_FORMATS
from watermark.params import DEFAULT, Params
from watermark.planes import DEFAULT_MAX_PIXELS, MIN_PIXELS, MIN_SUSPECT_PIXELS, check_size

READABLE_FORMATS: Final = (*MARKABLE_FORMATS, "BMP", "GIF", "TIFF")
DEFAULT_JPEG_QUALITY: Final = 95
DEFAULT_WEBP_QUALITY: Final = 95

# What Pillow raises on damaged data: truncation, bad chunks, broken streams.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError)


def open_image(
    data: bytes,
    *,
    formats: tuple[str, ...] = MARKABLE_FORMATS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = MIN_PIXELS,
) -> Image.Image:
    """Decode `data` fully, or raise an `UnsupportedImageError` subclass saying why not."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise CorruptImageError("no image data")
    # Pillow warns (RuntimeWarning) on headers past its own bomb limit; make that an error
    # here so it is refused like any other oversized image.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(bytes(data)), formats=formats)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(str(error)) from error
        except UnidentifiedImageError as error:
            raise UnsupportedImageError(f"not a {', '.join(formats)} image") from error
        except _DECODE_ERRORS as error:
            raise CorruptImageError(f"unreadable image header: {error}") from error
        check_size(image.width, image.height, max_pixels, min_pixels)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(str(error)) from error
        except _DECODE_ERRORS as error:
            raise CorruptImageError(f"damaged or truncated {image.format} data: {error}") from error
    return image


def _is_lossless_webp(data: bytes) -> bool:
    """True if the WebP's image chunk is VP8L (lossless); walks the RIFF chunk list."""
    position = 12
    while position + 8 <= len(data):
        tag = data[position : position + 4]
        if tag in {b"VP8L", b"VP8 "}:
            return tag == b"VP8L"
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        position += 8 + size + (size & 1)
    return False


@dataclass(frozen=True)
class Encoding:
    """How a copy is written so it looks like its master: format and the metadata kept.

    Sealed delivery carries this in its container, since the agent that writes the copy
    never sees the master file.
    """

    format: str
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    subsampling: int = -1
    lossless: bool = False


def _usable_dpi(dpi: object) -> tuple[float, float] | None:
    """A PNG's resolution if it is two positive numbers below a million, else none (a
    pHYs chunk of zero pixels per metre says nothing, and is not written back)."""
    if not isinstance(dpi, tuple) or len(dpi) != 2:
        return None
    try:
        pair = (float(dpi[0]), float(dpi[1]))
    except (TypeError, ValueError):
        return None
    return pair if all(0 < value < 1e6 for value in pair) else None


def encoding_of(source: Image.Image, data: bytes) -> Encoding:
    """The encoding `embed_bytes` gives a copy of `source` (decoded from `data`)."""
    info = source.info
    dpi = info.get("dpi") if source.format == "PNG" else None
    exif = info.get("exif") if source.format != "PNG" else None
    return Encoding(
        format=str(source.format),
        icc_profile=info.get("icc_profile") or None,
        exif=exif or None,
        dpi=_usable_dpi(dpi),
        subsampling=JpegImagePlugin.get_sampling(source) if source.format == "JPEG" else -1,
        lossless=source.format == "WEBP" and _is_lossless_webp(data),
    )


def encode(marked: Image.Image, encoding: Encoding, *,
           jpeg_quality: int = DEFAULT_JPEG_QUALITY,
           webp_quality: int = DEFAULT_WEBP_QUALITY) -> bytes:
    """The file of `marked` in `encoding`."""
    out = io.BytesIO()
    extra: dict[str, object] = {"icc_profile": encoding.icc_profile} if encoding.icc_profile else {}
    if encoding.format == "PNG":
        if encoding.dpi is not None:
            extra["dpi"] = encoding.dpi
        marked.save(out, "PNG", **extra)
    elif encoding.format == "JPEG":
        if encoding.subsampling >= 0:
            extra["subsampling"] = encoding.subsampling
        if encoding.exif:
            extra["exif"] = encoding.exif
        marked.save(out, "JPEG", quality=jpeg_quality, **extra)
    else:
        if encoding.exif:
            extra["exif"] = encoding.exif
        if encoding.lossless:
            marked.save(out, "WEBP", lossless=True, exact=True, **extra)
        else:
            marked.save(out, "WEBP", quality=webp_quality, **extra)
    return out.getvalue()


def embed_bytes(
    data: bytes,
    key: bytes,
    payload: int,
    *,
    params: Params = DEFAULT,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    webp_quality: int = DEFAULT_WEBP_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes:
    """The file `data` (PNG, JPEG or WebP) marked with `payload`, in the same format.

    Raises an `UnsupportedImageError` subclass for anything it will not mark (the agent records
    "not marked"), `InvalidKeyError` or `InvalidPayloadError` for bad arguments.
    """
    source = open_image(data, max_pixels=max_pixels)
    if getattr(source, "n_frames", 1) > 1:
        raise UnsupportedImageError("animated images cannot be marked")
    if source.format == "JPEG" and source.mode not in {"L", "RGB"}:
        raise UnsupportedImageError(f"JPEG in mode {source.mode!r} cannot be marked")
    marked = embed(source, key, payload, params=params, max_pixels=max_pixels)
    return encode(marked, encoding_of(source, bytes(data)), jpeg_quality=jpeg_quality,
                  webp_quality=webp_quality)


def extract_bytes(
    data: bytes,
    key: bytes,
    reference: bytes | Image.Image | None = None,
    *,
    params: Params = DEFAULT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ExtractResult:
    """Read the mark in a suspect file; `reference` is the master, as bytes or an image."""
    min_pixels = MIN_PIXELS if reference is None else MIN_SUSPECT_PIXELS
    suspect = open_image(data, formats=READABLE_FORMATS, max_pixels=max_pixels,
                         min_pixels=min_pixels)
    if isinstance(reference, bytes | bytearray | memoryview):
        master: Image.Image | None = open_image(reference, formats=READABLE_FORMATS,
                                                max_pixels=max_pixels)
    else:
        master = reference
    return extract(suspect, key, master, params=params, max_pixels=max_pixels)
