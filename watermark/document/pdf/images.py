"""The image mark on every raster image XObject of a PDF.

Each image is decoded with `pikepdf.PdfImage` (public API), marked with `watermark.embed`
(the same mark, key and payload as a delivered picture) and written back into the same
stream object: a DCT (JPEG) image as JPEG at quality 95 with the master's chroma
subsampling, anything else as 8-bit Flate. Soft masks (/SMask) and stencil masks are kept
as they were (same size, so the alpha still fits). What the image mark refuses (below
256x256 pixels, CMYK, 16-bit, Decode arrays, exotic colour spaces) is left alone and
counted.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Final

import pikepdf
from PIL import Image, JpegImagePlugin

from watermark.document.pdf.check import ascii_decode, image_streams
from watermark.document.pdf.limits import MAX_IMAGE_PIXELS, MAX_IMAGES_READ, MAX_STREAM_BYTES
from watermark.embed import embed
from watermark.errors import CorruptDocumentError, EmbedCheckError, UnsupportedImageError
from watermark.extract import extract
from watermark.result import ExtractResult

JPEG_QUALITY: Final = 95
_DCT: Final = frozenset({"/DCTDecode", "/DCT"})
_HEADER_CODECS: Final = frozenset({"/DCTDecode", "/DCT", "/JPXDecode"})
_ASCII_FILTERS: Final = frozenset({"/ASCIIHexDecode", "/ASCII85Decode", "/AHx", "/A85"})
_FLATE: Final = frozenset({"/FlateDecode", "/Fl"})
_SAMPLING: Final = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
_DECODE_ERRORS: Final = (pikepdf.PdfError, NotImplementedError, ValueError, OSError,
                         KeyError, TypeError, AttributeError, ZeroDivisionError,
                         Image.DecompressionBombError, zlib.error,
                         CorruptDocumentError)


@dataclass(frozen=True)
class ImageCount:
    marked: int
    left: int


def _colour_space(stream: pikepdf.Stream) -> str | None:
    """'L', 'RGB' or 'P' for colour spaces this module writes back faithfully."""
    space = stream.get("/ColorSpace")
    if space == pikepdf.Name.DeviceGray or space == pikepdf.Name("/CalGray"):
        return "L"
    if space == pikepdf.Name.DeviceRGB or space == pikepdf.Name("/CalRGB"):
        return "RGB"
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = space[0]
        if family == pikepdf.Name.ICCBased and isinstance(space[1], pikepdf.Stream):
            components = int(space[1].get("/N", 0))
            return {1: "L", 3: "RGB"}.get(components)
        if family == pikepdf.Name.Indexed:
            return "P"
    return None


def decode_image(stream: pikepdf.Stream) -> Image.Image | None:
    """The image's pixels as an L or RGB picture, or None if it is not one to mark."""
    try:
        width, height = int(stream.get("/Width", 0)), int(stream.get("/Height", 0))
        if width * height > MAX_IMAGE_PIXELS or width <= 0 or height <= 0:
            return None
        if stream.get("/Decode") is not None or int(stream.get("/BitsPerComponent", 8)) != 8:
            return None
        space = _colour_space(stream)
        if space is None:
            return None
        filters = _filters(stream)
        picture: Image.Image
        if filters in (["/DCTDecode"], ["/DCT"]):
            picture = Image.open(io.BytesIO(stream.read_raw_bytes()), formats=["JPEG"])
            if picture.size != (width, height):
                return None  # a JPEG that is not what its dictionary says is left alone
            picture.load()
        elif space in {"L", "RGB"} and filters in ([], ["/FlateDecode"], ["/Fl"]):
            pixels = stream.read_bytes()
            if len(pixels) < width * height * len(space):
                return None
            picture = Image.frombytes(space, (width, height), pixels)
        else:
            if filters and filters[-1] in _HEADER_CODECS and not _header_fits(
                    stream, filters, (width, height)):
                return None
            # pikepdf composes a soft mask into RGBA; the mask stays in its own stream
            picture = pikepdf.PdfImage(stream).as_pil_image()
            if picture.mode in {"RGBA", "P"}:
                picture = picture.convert("RGB")
        if picture.mode not in {"L", "RGB"} or picture.size != (width, height):
            return None  # not what the dictionary (hence the check's pixel limit) says
        picture.load()
    except _DECODE_ERRORS:
        return None
    return picture


def _header_fits(stream: pikepdf.Stream, filters: list[str], size: tuple[int, int]) -> bool:
    """Whether a JPEG or JPEG 2000 image's own header has the size its dictionary declares
    (the size the check limited), read before pikepdf decodes it. The filters before the
    codec are undone here: ASCII ones, and Flate up to the stream limit."""
    data = stream.read_raw_bytes()
    for name in filters[:-1]:
        if name in _ASCII_FILTERS:
            data = ascii_decode(data, name)
        elif name in _FLATE:
            data = zlib.decompressobj().decompress(data, MAX_STREAM_BYTES)
        else:
            return False  # LZW or RunLength before a codec: too rare to be worth decoding
    with Image.open(io.BytesIO(data), formats=["JPEG", "JPEG2000"]) as header:
        return header.size == size


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if isinstance(value, pikepdf.Array):
        return [str(item) for item in value]
    return [] if value is None else [str(value)]


def _sampling(stream: pikepdf.Stream) -> str:
    try:
        with Image.open(io.BytesIO(stream.read_raw_bytes()), formats=["JPEG"]) as source:
            if isinstance(source, JpegImagePlugin.JpegImageFile):
                return _SAMPLING.get(JpegImagePlugin.get_sampling(source), "4:2:0")
    except _DECODE_ERRORS:
        pass
    return "4:2:0"


def mark_images(pdf: pikepdf.Pdf, key: bytes, payload: int) -> ImageCount:
    """Mark every image the image mark accepts, in place; count the ones left."""
    marked = left = 0
    for stream in image_streams(pdf):
        picture = decode_image(stream)
        if picture is None:
            left += 1
            continue
        try:
            copy = embed(picture, key, payload)
        except (UnsupportedImageError, EmbedCheckError):
            left += 1
            continue
        if _filters(stream) in (["/DCTDecode"], ["/DCT"]):
            buffer = io.BytesIO()
            subsampling = _sampling(stream) if copy.mode == "RGB" else "4:4:4"
            copy.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=subsampling,
                      optimize=False, progressive=False)
            stream.write(buffer.getvalue(), filter=pikepdf.Name.DCTDecode, decode_parms=None)
        else:
            stream.write(zlib.compress(copy.tobytes(), 6), filter=pikepdf.Name.FlateDecode,
                         decode_parms=None)
        if picture.mode != copy.mode or _colour_space(stream) == "P":
            stream.ColorSpace = pikepdf.Name.DeviceRGB if copy.mode == "RGB" else \
                pikepdf.Name.DeviceGray
        stream.BitsPerComponent = 8
        marked += 1
    return ImageCount(marked, left)


def pictures(pdf: pikepdf.Pdf) -> list[Image.Image]:
    """The images a reader looks at, largest first: the `MAX_IMAGES_READ` largest by the
    Width and Height their dictionaries declare (nothing is decoded to rank them), of which
    those that decode."""
    candidates = sorted(image_streams(pdf), key=lambda stream: -_declared_pixels(stream))
    return [picture for stream in candidates[:MAX_IMAGES_READ]
            if (picture := decode_image(stream)) is not None]


def _declared_pixels(stream: pikepdf.Stream) -> int:
    try:
        width, height = int(stream.get("/Width", 0)), int(stream.get("/Height", 0))
    except (TypeError, ValueError):
        return 0
    return max(width, 0) * max(height, 0)


def read_picture(picture: Image.Image, key: bytes,
                 reference: Image.Image | None = None) -> ExtractResult | None:
    try:
        return extract(picture, key, reference)
    except UnsupportedImageError:
        return None
