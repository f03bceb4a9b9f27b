"""Refuse what should not be marked or read, cheaply and before any content is decoded.

`check_pdf` is what the platform runs at upload and the agent before marking; `open_checked`
is the same check returning the parsed document, used by the embedder and the reader.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import pikepdf

from watermark.document.pdf import limits
from watermark.errors import CorruptDocumentError, DocumentTooLargeError, UnsupportedDocumentError

_INFLATE_CHUNK: Final = 1 << 20
_ASCII_FILTERS: Final = frozenset({"/ASCIIHexDecode", "/ASCII85Decode", "/AHx", "/A85"})
_IMAGE_CODECS: Final = frozenset({"/DCTDecode", "/DCT", "/JPXDecode", "/CCITTFaxDecode",
                                  "/CCF", "/JBIG2Decode"})
_FLATE: Final = frozenset({"/FlateDecode", "/Fl"})
_OPAQUE: Final = frozenset({"/LZWDecode", "/LZW", "/RunLengthDecode", "/RL"})
#: a show-text operator as a token (cheap: a string holding "Tj" may count a page as text)
_SHOW_TEXT: Final = re.compile(rb"(?<![^\s\]\)>])(?:Tj|TJ|'|\")(?![^\s/\[\(<%])")
#: a literal string without nested parentheses (emptied before operators are counted)
_STRING: Final = re.compile(rb"\([^()\\]*(?:\\.[^()\\]*)*\)", re.DOTALL)
#: bytes after which a letter or quote starts a token: whitespace and delimiters but "/"
#: (a name); such a token is an operator, or a word in a comment, a hex string or a nested
#: string (counted too: the count errs high, and is one regex and one vectorised pass)
_SEPARATORS: Final = np.zeros(256, dtype=bool)
_SEPARATORS[list(b" \t\r\n\f\x00()<>[]{}%")] = True
_OPERATOR_START: Final = np.zeros(256, dtype=bool)
_OPERATOR_START[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'\"")] = True


@dataclass(frozen=True)
class PdfInfo:
    """What a PDF holds: `pages`, `images` (raster image XObjects, masks not counted) and
    `text_pages` (pages whose content shows text)."""

    pages: int
    images: int
    text_pages: int


def check_pdf(data: bytes) -> PdfInfo:
    """Check `data` is a whole, unencrypted PDF within `limits`; say what it holds.

    Raises `CorruptDocumentError` (empty, truncated, unparsable), `UnsupportedDocumentError`
    (encrypted, no pages) or `DocumentTooLargeError` (past a limit in `limits`).
    """
    pdf = open_checked(data)
    try:
        return _info(pdf)
    finally:
        pdf.close()


def open_checked(data: bytes) -> pikepdf.Pdf:
    """The parsed document, after every check of `check_pdf`; the caller closes it."""
    raw = _raw_bytes(data)
    try:
        pdf = pikepdf.open(io.BytesIO(raw))
    except pikepdf.PasswordError as error:
        raise UnsupportedDocumentError("the PDF is encrypted") from error
    except (pikepdf.PdfError, RecursionError, ValueError, OSError) as error:
        raise CorruptDocumentError(f"unparsable PDF: {error}") from error
    try:
        _check_structure(pdf)
    except (UnsupportedDocumentError, DocumentTooLargeError):
        pdf.close()
        raise
    except (pikepdf.PdfError, RecursionError, ValueError, KeyError, TypeError,
            AttributeError, OSError, zlib.error) as error:
        pdf.close()
        raise CorruptDocumentError(f"damaged PDF: {error}") from error
    return pdf


def _raw_bytes(data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptDocumentError(f"PDF data must be bytes, not {type(data).__name__}")
    raw = bytes(data)
    if not raw.strip():
        raise CorruptDocumentError("empty PDF")
    if len(raw) > limits.MAX_FILE_BYTES:
        raise DocumentTooLargeError(f"PDF of {len(raw)} bytes, limit {limits.MAX_FILE_BYTES}")
    if b"%PDF-" not in raw[:1024]:
        raise CorruptDocumentError("not a PDF (no %PDF- header)")
    # A whole file ends with %%EOF (possibly followed by a little whitespace or junk);
    # qpdf would rebuild a truncated file from what is left, and mark half a document.
    if b"%%EOF" not in raw[-2048:]:
        raise CorruptDocumentError("truncated PDF (no %%EOF at the end)")
    return raw


def _check_structure(pdf: pikepdf.Pdf) -> None:
    if pdf.is_encrypted:
        raise UnsupportedDocumentError("the PDF is encrypted")
    objects = pdf.objects
    if len(objects) > limits.MAX_OBJECTS:
        raise DocumentTooLargeError(f"{len(objects)} objects, limit {limits.MAX_OBJECTS}")
    pages = len(pdf.pages)
    if pages == 0:
        raise UnsupportedDocumentError("the PDF has no pages")
    if pages > limits.MAX_PAGES:
        raise DocumentTooLargeError(f"{pages} pages, limit {limits.MAX_PAGES}")
    total = 0
    sizes: dict[tuple[int, int], int] = {}
    for obj in objects:
        if not isinstance(obj, pikepdf.Array | pikepdf.Dictionary | pikepdf.Stream):
            continue
        _check_depth(obj)
        if isinstance(obj, pikepdf.Stream):
            size = _check_stream(obj)
            sizes[obj.objgen] = size
            total += size
            if total > limits.MAX_TOTAL_BYTES:
                raise DocumentTooLargeError(
                    f"streams inflate past {limits.MAX_TOTAL_BYTES} bytes in all")
    for page in pdf.pages:
        _check_page_size(page)
    _check_content_budget(pdf, sizes)


def _check_page_size(page: pikepdf.Page) -> None:
    """MediaBox (inherited or not) times UserUnit, at most `MAX_PAGE_SIDE` a side."""
    box = page.obj.get("/MediaBox")
    if box is None:
        box = page.mediabox  # inherited from the page tree
    unit = page.obj.get("/UserUnit", 1)
    try:
        corners = [float(value) for value in box]
        scale = float(unit)
    except (TypeError, ValueError) as error:
        raise CorruptDocumentError(f"a page with a damaged MediaBox: {error}") from error
    if len(corners) != 4 or not all(map(math.isfinite, [*corners, scale])):
        raise CorruptDocumentError("a page with a damaged MediaBox")
    side = max(abs(corners[2] - corners[0]), abs(corners[3] - corners[1])) * abs(scale)
    if side > limits.MAX_PAGE_SIDE:
        raise DocumentTooLargeError(
            f"a page {side / 72:.0f} inches a side, limit {limits.MAX_PAGE_SIDE / 72:.0f}")


def _page_contents(page: pikepdf.Page) -> list[pikepdf.Stream]:
    contents = page.obj.get("/Contents")
    if isinstance(contents, pikepdf.Stream):
        return [contents]
    if isinstance(contents, pikepdf.Array):
        return [item for item in contents if isinstance(item, pikepdf.Stream)]
    return []


def _check_content_budget(pdf: pikepdf.Pdf, sizes: dict[tuple[int, int], int]) -> None:
    """Page content is parsed once per page (by the check, the embedder and PDFium), so a
    stream shared by many pages counts once per page: bytes first (from the sizes already
    measured, nothing decoded), then operators, each distinct stream decoded once."""
    total = 0
    for page in pdf.pages:
        total += sum(sizes.get(stream.objgen, 0) for stream in _page_contents(page))
        if total > limits.MAX_CONTENT_BYTES:
            raise DocumentTooLargeError(
                f"page content past {limits.MAX_CONTENT_BYTES} bytes in all "
                "(a stream shared by many pages counts for each)")
    operators: dict[tuple[int, int], int] = {}
    count = 0
    for page in pdf.pages:
        on_page = 0
        for stream in _page_contents(page):
            if stream.objgen not in operators:
                operators[stream.objgen] = _count_operators(_content_bytes(stream))
            on_page += operators[stream.objgen]
        if on_page > limits.MAX_PAGE_OPERATORS:
            raise DocumentTooLargeError(
                f"a page of {on_page} content operators, limit {limits.MAX_PAGE_OPERATORS}")
        count += on_page
        if count > limits.MAX_CONTENT_OPERATORS:
            raise DocumentTooLargeError(
                f"page content past {limits.MAX_CONTENT_OPERATORS} operators in all "
                "(a stream shared by many pages counts for each)")


def _count_operators(content: bytes) -> int:
    codes = np.frombuffer(_STRING.sub(b"()", content), dtype=np.uint8)
    if not codes.size:
        return 0
    starts = _OPERATOR_START[codes]
    starts[1:] &= _SEPARATORS[codes[:-1]]
    return int(np.count_nonzero(starts))


def _content_bytes(stream: pikepdf.Stream) -> bytes:
    """A content stream decoded (its filters were checked, so this is bounded); b"" for
    one qpdf cannot decode, which the marker leaves alone."""
    try:
        return stream.read_bytes()
    except pikepdf.PdfError:
        return b""


def _check_depth(root: pikepdf.Object) -> None:
    """Nesting of direct arrays and dictionaries inside one object, without recursion."""
    stack: list[tuple[pikepdf.Object, int]] = [(root, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > limits.MAX_DEPTH:
            raise DocumentTooLargeError(f"objects nested deeper than {limits.MAX_DEPTH}")
        children: list[pikepdf.Object]
        if isinstance(obj, pikepdf.Array):
            children = list(obj)
        elif isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            children = [obj[name] for name in obj.keys()]  # noqa: SIM118
        else:
            continue
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, pikepdf.Array | pikepdf.Dictionary)
                     and not child.is_indirect)


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if value is None:
        return []
    if isinstance(value, pikepdf.Array):
        return [str(item) for item in value]
    return [str(value)]


def _check_stream(stream: pikepdf.Stream) -> int:
    """The stream's decoded size (its size before an image codec for images), refusing
    bombs. ASCII filters are undone here (they only shrink), Flate is inflated chunk by
    chunk and only counted; image codecs are bounded by the pixel count checked above."""
    if stream.get("/Subtype") == pikepdf.Name.Image:
        width, height = int(stream.get("/Width", 0)), int(stream.get("/Height", 0))
        if width < 0 or height < 0 or width * height > limits.MAX_IMAGE_PIXELS:
            raise DocumentTooLargeError(
                f"an image of {width}x{height} pixels, limit {limits.MAX_IMAGE_PIXELS}")
    data = stream.read_raw_bytes()
    filters = _filters(stream)
    while filters and filters[0] in _ASCII_FILTERS:
        data = ascii_decode(data, filters.pop(0))
    codecs = filters[1:] if filters and filters[0] in _FLATE | _OPAQUE else filters
    if len(codecs) > 1 or (codecs and codecs[0] not in _IMAGE_CODECS):
        # stacked decompressors (Flate in Flate expands a million times per layer) or
        # filters this library does not know: refused before anything is decoded
        raise UnsupportedDocumentError(
            f"a stream with filters {' '.join(_filters(stream))}: only ASCIIHex/ASCII85, "
            "then one of Flate, LZW or RunLength, then one image codec are accepted")
    if not filters or filters[0] in _IMAGE_CODECS:
        return len(data)
    if filters[0] in _FLATE:
        return _inflated_size(data)
    return _decoded_size(stream, len(data))


def ascii_decode(data: bytes, name: str) -> bytes:
    """`data` with the ASCIIHex or ASCII85 filter `name` undone (both only shrink)."""
    try:
        if name in {"/ASCIIHexDecode", "/AHx"}:
            text = bytes(data.split(b">", 1)[0].translate(None, b" \t\r\n\f\x00"))
            return binascii.unhexlify(text + b"0" * (len(text) % 2))
        body = bytes(data.split(b"~>", 1)[0].translate(None, b" \t\r\n\f\x00"))
        body = body.removeprefix(b"<~")
        return base64.a85decode(body)
    except (binascii.Error, ValueError) as error:
        raise CorruptDocumentError(f"a damaged {name[1:]} stream") from error


def _inflated_size(raw: bytes) -> int:
    """Inflate chunk by chunk, keeping only the count; stop at the limit."""
    inflater = zlib.decompressobj()
    size = 0
    data = raw
    while data:
        out = inflater.decompress(data, _INFLATE_CHUNK)
        size += len(out)
        if size > limits.MAX_STREAM_BYTES:
            raise DocumentTooLargeError(
                f"a stream inflates past {limits.MAX_STREAM_BYTES} bytes (a PDF bomb)")
        data = inflater.unconsumed_tail
        if not out and not data:
            break
        if inflater.eof:
            break
    return size


def _decoded_size(stream: pikepdf.Stream, size: int) -> int:
    """LZW and RunLength (alone, or before an image codec) cannot be inflated
    incrementally and are decoded whole by qpdf; their encoded size bounds what that can
    cost (one layer only: `_check_stream` refuses stacked decompressors)."""
    if size > limits.MAX_OPAQUE_RAW_BYTES:
        raise DocumentTooLargeError(
            f"a stream of {size} encoded bytes in filters that cannot be inflated "
            f"incrementally ({' '.join(_filters(stream))}), "
            f"limit {limits.MAX_OPAQUE_RAW_BYTES}")
    try:
        decoded = stream.read_bytes()
    except pikepdf.PdfError:
        return size  # an undecodable stream is left alone by the marker
    if len(decoded) > limits.MAX_STREAM_BYTES:
        raise DocumentTooLargeError(f"a stream decodes past {limits.MAX_STREAM_BYTES} bytes")
    return len(decoded)


def image_streams(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    """Raster image XObjects in object order, without stencil masks and soft masks."""
    images: list[pikepdf.Stream] = []
    masks: set[tuple[int, int]] = set()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == pikepdf.Name.Image:
            for name in ("/SMask", "/Mask"):
                mask = obj.get(name)
                if isinstance(mask, pikepdf.Stream):
                    masks.add(mask.objgen)
            if not bool(obj.get("/ImageMask", False)):
                images.append(obj)
    return [image for image in images if image.objgen not in masks]


def _info(pdf: pikepdf.Pdf) -> PdfInfo:
    """Pages that show text, found by a token scan of each distinct content stream (within
    the budget `open_checked` enforced), not by parsing every page."""
    shows: dict[tuple[int, int], bool] = {}
    text_pages = 0
    for page in pdf.pages:
        found = False
        for stream in _page_contents(page):
            if stream.objgen not in shows:
                shows[stream.objgen] = _SHOW_TEXT.search(_content_bytes(stream)) is not None
            found = found or shows[stream.objgen]
        text_pages += found
    return PdfInfo(pages=len(pdf.pages), images=len(image_streams(pdf)), text_pages=text_pages)
