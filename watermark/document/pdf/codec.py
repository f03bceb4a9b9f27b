"""Marking a PDF and reading a suspect one: `embed_pdf_bytes`, `extract_pdf_bytes`.

A copy carries the payload three ways, each read on its own (docs/WATERMARK.md, "PDF"):
the per-copy identifier (`ident`), the text mark (`units`, `content`, `textmark`) and the
image mark on every raster image (`images`). The output is saved by qpdf with a fixed /ID
(the copy's identifier) and content-derived everything else, so the same master, key,
payload and library versions give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from numpy.typing import NDArray
from PIL import Image

from watermark import ecc
from watermark.document.pdf.check import open_checked
from watermark.document.pdf.content import shift_page
from watermark.document.pdf.ident import read_identifier_in, write_identifier
from watermark.document.pdf.images import mark_images, pictures, read_picture
from watermark.document.pdf.layout import (
    MIN_LINE_CHARS,
    PageLayout,
    object_char_counts,
    read_layout,
)
from watermark.document.pdf.limits import (
    MAX_IMAGES_READ,
    MAX_PAGES_RENDERED,
    MAX_RENDER_PIXELS,
)
from watermark.document.pdf.textmark import blind_soft, informed_soft, page_shifts, raster_soft
from watermark.document.pdf.units import LINE_SHIFT, WORD_SHIFT, page_units
from watermark.errors import CorruptDocumentError
from watermark.payload import (
    INFO_BITS,
    Decoded,
    codeword,
    decode,
    validate_key,
    validate_payload,
)
from watermark.result import ExtractResult

#: resolution at which a suspect without a text layer is compared with the master
RASTER_DPI: Final = 150.0
#: visible "licensed to" line: font size (points), grey level, distance from the page foot
LICENCE_FONT_SIZE: Final = 7
LICENCE_GREY: Final = 0.35
LICENCE_MARGIN: Final = 10.0
#: units a read needs before its soft values are decoded at all
MIN_UNITS: Final = 40
_CARRIERS: Final = ("identifier", "text", "images")


def _pdfium(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        raise CorruptDocumentError(f"PDFium cannot open the PDF: {error}") from error


def _layouts(document: pdfium.PdfDocument) -> list[PageLayout]:
    layouts = []
    for index in range(len(document)):
        try:
            page = document[index]
        except pdfium.PdfiumError as error:
            raise CorruptDocumentError(f"PDFium cannot load page {index + 1}") from error
        try:
            layouts.append(read_layout(page))
        finally:
            page.close()
    return layouts


def embed_pdf_bytes(data: bytes, key: bytes, payload: int, *,
                    licensed_to: str | None = None) -> bytes:
    """`data` marked with `payload` under `key`: text shifts, image marks, identifier.

    Raises the errors of `check_pdf` for a PDF it will not mark, `InvalidKeyError` or
    `InvalidPayloadError` for bad arguments. Never returns a copy it cannot parse again.
    """
    try:
        return _embed(data, key, payload, licensed_to)
    except pdfium.PdfiumError as error:
        raise CorruptDocumentError(f"PDFium cannot read the PDF: {error}") from error


def _embed(data: bytes, key: bytes, payload: int, licensed_to: str | None) -> bytes:
    key = validate_key(key)
    payload = validate_payload(payload)
    raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data
    pdf = open_checked(raw)
    try:
        code = codeword(key, payload)
        _mark_all_text(pdf, raw, key, code)
        mark_images(pdf, key, payload)
        if licensed_to:
            _add_licence_line(pdf, licensed_to)
        write_identifier(pdf, key, payload)
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True, fix_metadata_version=False,
                 object_stream_mode=pikepdf.ObjectStreamMode.preserve, compress_streams=True)
    except pikepdf.PdfError as error:
        raise CorruptDocumentError(f"the PDF could not be marked: {error}") from error
    finally:
        pdf.close()
    out = buffer.getvalue()
    open_checked(out).close()  # the copy must pass the same checks as a master
    _pdfium(out).close()
    return out


def _mark_all_text(pdf: pikepdf.Pdf, raw: bytes, key: bytes, code: NDArray[np.float64]) -> None:
    """Shift lines and words on every page, then check the result as PDFium reads it: a
    page whose characters are not all where the master has them, give or take the
    shifts, gets its original content back (so a content stream this module misreads is
    never delivered with text moved)."""
    document = _pdfium(raw)
    try:
        if len(document) != len(pdf.pages):
            raise CorruptDocumentError("qpdf and PDFium disagree on the page count")
        masters: dict[int, PageLayout] = {}
        originals: dict[int, pikepdf.Object] = {}
        for index, page in enumerate(pdf.pages):
            try:
                rendered = document[index]
            except pdfium.PdfiumError:
                continue  # a page PDFium cannot load keeps its text as it is
            try:
                layout = read_layout(rendered, objects=True)
                counts = object_char_counts(rendered)
            finally:
                rendered.close()
            units = page_units(layout, key)
            if not units:
                continue
            try:
                result = shift_page(page, page_shifts(layout, units, code), counts,
                                    layout.text_objects)
            except (pikepdf.PdfError, ValueError, TypeError, IndexError):
                continue  # content qpdf cannot parse as PDFium did: the page stays as it was
            if result is not None:
                original = page.obj.get("/Contents")
                if original is None:
                    continue
                originals[index] = original
                masters[index] = layout
                page.obj.Contents = pdf.make_stream(result[0])
    finally:
        document.close()
    if not masters:
        return
    buffer = io.BytesIO()
    pdf.save(buffer, deterministic_id=True, fix_metadata_version=False)
    marked = _pdfium(buffer.getvalue())
    try:
        for index, master in masters.items():
            rendered = marked[index]
            try:
                copy = read_layout(rendered)
            finally:
                rendered.close()
            if not _only_shifted(master, copy):
                pdf.pages[index].obj.Contents = originals[index]
    finally:
        marked.close()


def _only_shifted(master: PageLayout, copy: PageLayout) -> bool:
    if master.text != copy.text:
        return False
    reach = max(LINE_SHIFT, WORD_SHIFT) + 0.02
    return all(abs(a.x - b.x) <= reach and abs(a.y - b.y) <= reach
               for a, b in zip(master.chars, copy.chars, strict=True))


def _add_licence_line(pdf: pikepdf.Pdf, licensed_to: str) -> None:
    text = f"Licensed to {' '.join(licensed_to.split())}"
    encoded = text.encode("cp1252", "replace")
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
        BaseFont=pikepdf.Name.Helvetica, Encoding=pikepdf.Name.WinAnsiEncoding))
    for page in pdf.pages:
        fonts = page.resources.get("/Font") if "/Resources" in page.obj else None
        taken = set(fonts.keys()) if isinstance(fonts, pikepdf.Dictionary) else set()
        name = next(f"/PeermarkLicence{n or ''}" for n in range(len(taken) + 1)
                    if f"/PeermarkLicence{n or ''}" not in taken)
        page.add_resource(font, pikepdf.Name.Font, pikepdf.Name(name))
        box = page.cropbox
        left, bottom = float(box[0]), float(box[1])
        body = (b"Q\nq BT " + bytes(pikepdf.Name(name).unparse()) +
                b" %d Tf %.2f g 1 0 0 1 %.2f %.2f Tm <%s> Tj ET Q\n" % (
                    LICENCE_FONT_SIZE, LICENCE_GREY, left + 24.0, bottom + LICENCE_MARGIN,
                    encoded.hex().encode("ascii")))
        page.contents_add(pdf.make_stream(b"q\n"), prepend=True)
        page.contents_add(pdf.make_stream(body), prepend=False)


# --------------------------------------------------------------------------- reading


def _decode(key: bytes, soft: NDArray[np.float64], used: int) -> Decoded | None:
    if used < MIN_UNITS or not np.any(soft):
        return None
    return decode(key, soft)


def _ink(page: pdfium.PdfPage, dpi: float, *, fit: bool = False) -> NDArray[np.float32] | None:
    """The page's ink (0..1, 1 black) rendered at `dpi`, float32. A render past
    `MAX_RENDER_PIXELS` is None, or with `fit` made at the lower resolution that fits
    (for thumbnails, whose scale does not matter)."""
    width, height = page.get_size()
    scale = dpi / 72.0
    pixels = math.ceil(abs(width) * scale) * math.ceil(abs(height) * scale)
    if not pixels or not math.isfinite(pixels):
        return None
    if pixels > MAX_RENDER_PIXELS:
        if not fit:
            return None
        scale *= 0.99 * math.sqrt(MAX_RENDER_PIXELS / pixels)
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        grey = np.asarray(bitmap.to_pil().convert("L"), dtype=np.uint8)
    finally:
        bitmap.close()
    ink: NDArray[np.float32] = grey.astype(np.float32)
    ink *= np.float32(-1.0 / 255.0)
    ink += np.float32(1.0)
    return ink


def _thumbnail(ink: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    picture = Image.fromarray(np.uint8(np.clip(ink * 255, 0, 255))).resize((64, 80))
    values = np.asarray(picture, dtype=np.float64)
    values -= values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm else values


def extract_pdf_bytes(data: bytes, key: bytes, reference: bytes | None = None
                      ) -> ExtractResult:
    """Read the payload `key`'s holder embedded in the suspect PDF `data`.

    Blind without `reference`; informed with the master's bytes, which also reads copies
    whose pages were turned into pictures. `evidence` names the carriers that gave the
    payload. Raises the errors of `check_pdf` for a suspect it cannot parse.
    """
    try:
        return _extract(data, key, reference)
    except pdfium.PdfiumError as error:
        raise CorruptDocumentError(f"PDFium cannot read the PDF: {error}") from error


def _extract(data: bytes, key: bytes, reference: bytes | None) -> ExtractResult:
    key = validate_key(key)
    raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data
    pdf = open_checked(raw)
    try:
        identified = read_identifier_in(pdf, key)
        suspect_pictures = pictures(pdf)
    finally:
        pdf.close()
    master_raw: bytes | None = None
    master_pictures: list[Image.Image] = []
    if reference is not None:
        master_raw = bytes(reference)
        master_pdf = open_checked(master_raw)
        try:
            master_pictures = pictures(master_pdf)
        finally:
            master_pdf.close()
    found: dict[str, int] = {}
    reads: list[Decoded] = []
    if identified:
        found["identifier"] = Counter(identified).most_common(1)[0][0]
    text_read, raster_pictures = _read_text(raw, master_raw, key, master_pictures)
    reads.extend(text_read)
    for decoded in text_read:
        if decoded.payload is not None:
            found.setdefault("text", decoded.payload)
    image_reads = _read_images(suspect_pictures, raster_pictures, key)
    for result in image_reads:
        if result.found and result.payload is not None:
            found.setdefault("images", result.payload)
    return _result(found, reads, image_reads, informed=reference is not None)


def _read_text(raw: bytes, master_raw: bytes | None, key: bytes,
               master_pictures: Sequence[Image.Image]
               ) -> tuple[list[Decoded], list[tuple[Image.Image, Image.Image]]]:
    """Text decodes (blind, then informed), and (suspect crop, master image) pairs found
    on pages that are pictures, for the image reader."""
    document = _pdfium(raw)
    decodes: list[Decoded] = []
    raster_pairs: list[tuple[Image.Image, Image.Image]] = []
    try:
        layouts = _layouts(document)
        soft, used = blind_soft(layouts, key)
        blind = _decode(key, soft, used)
        if blind is not None:
            decodes.append(blind)
            if blind.payload is None:
                # second and last try: neighbours' moves, as the first decode has them,
                # taken out of each word's reading
                estimate = ecc.encode(ecc.decode(soft, INFO_BITS))
                again = _decode(key, *blind_soft(layouts, key, estimate))
                if again is not None:
                    decodes.append(again)
        if master_raw is None:
            return decodes, raster_pairs
        master = _pdfium(master_raw)
        try:
            soft, used, raster_pairs = _informed(document, layouts, master, key,
                                                 master_pictures)
        finally:
            master.close()
        informed = _decode(key, soft, used)
        if informed is not None:
            decodes.append(informed)
    finally:
        document.close()
    return decodes, raster_pairs


def _informed(document: pdfium.PdfDocument, layouts: Sequence[PageLayout],
              master: pdfium.PdfDocument, key: bytes, master_pictures: Sequence[Image.Image]
              ) -> tuple[NDArray[np.float64], int, list[tuple[Image.Image, Image.Image]]]:
    master_layouts = _layouts(master)
    text_pairs: list[tuple[PageLayout, PageLayout]] = []
    raster: list[tuple[PageLayout, NDArray[np.float32], NDArray[np.float32]]] = []
    rendered = 0
    picture_pairs: list[tuple[Image.Image, Image.Image]] = []
    master_thumbs: dict[int, NDArray[np.float64]] = {}
    for index, layout in enumerate(layouts):
        if len(layout.chars) >= MIN_LINE_CHARS:
            best = _best_text_match(layout, master_layouts)
            if best is not None:
                text_pairs.append((master_layouts[best], layout))
            continue
        # A page without a text layer: a picture of a page. Find the master page it shows.
        if rendered >= MAX_PAGES_RENDERED:
            continue
        rendered += 1
        page = document[index]
        try:
            suspect_ink = _ink(page, RASTER_DPI)
        finally:
            page.close()
        if suspect_ink is None:
            continue
        thumb = _thumbnail(suspect_ink)
        scores = []
        for candidate in range(len(master)):
            if candidate not in master_thumbs:
                master_page = master[candidate]
                try:
                    small = _ink(master_page, 24.0, fit=True)
                finally:
                    master_page.close()
                master_thumbs[candidate] = (np.zeros((80, 64)) if small is None
                                            else _thumbnail(small))
            scores.append(float(np.sum(master_thumbs[candidate] * thumb)))
        if not scores or max(scores) < 0.5:
            continue
        best = int(np.argmax(scores))
        master_page = master[best]
        try:
            master_ink = _ink(master_page, RASTER_DPI)
            boxes = _image_boxes(master_page)
        finally:
            master_page.close()
        if master_ink is None:
            continue
        height = min(master_ink.shape[0], suspect_ink.shape[0])
        width = min(master_ink.shape[1], suspect_ink.shape[1])
        master_ink, suspect_ink = master_ink[:height, :width], suspect_ink[:height, :width]
        if len(master_layouts[best].chars) >= MIN_LINE_CHARS:
            raster.append((master_layouts[best], master_ink, suspect_ink))
        picture_pairs.extend(_crops(boxes, master_layouts[best], suspect_ink,
                                    master_pictures))
    soft_text, used_text = informed_soft(text_pairs, key)
    soft_raster, used_raster = raster_soft(raster, key, RASTER_DPI)
    return soft_text + soft_raster, used_text + used_raster, picture_pairs


def _best_text_match(layout: PageLayout, masters: Sequence[PageLayout]) -> int | None:
    text = layout.text
    for index, master in enumerate(masters):
        if master.text == text:
            return index
    import difflib

    best, score = None, 0.6
    for index, master in enumerate(masters):
        matcher = difflib.SequenceMatcher(None, master.text, text, autojunk=False)
        if matcher.real_quick_ratio() > score and matcher.quick_ratio() > score:
            ratio = matcher.ratio()
            if ratio > score:
                best, score = index, ratio
    return best


def _image_boxes(page: pdfium.PdfPage) -> list[tuple[tuple[int, int], tuple[float, ...]]]:
    """(pixel size, page-space bounds) of the page's own image objects."""
    boxes = []
    for index in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, index)
        if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_IMAGE:
            continue
        import ctypes

        width, height = ctypes.c_uint(), ctypes.c_uint()
        if not pdfium_c.FPDFImageObj_GetImagePixelSize(obj, width, height):
            continue
        bounds = [ctypes.c_float() for _ in range(4)]
        if not pdfium_c.FPDFPageObj_GetBounds(obj, *bounds):
            continue
        boxes.append(((width.value, height.value), tuple(b.value for b in bounds)))
    return boxes


def _crops(boxes: Sequence[tuple[tuple[int, int], tuple[float, ...]]], layout: PageLayout,
           suspect_ink: NDArray[np.float32], master_pictures: Sequence[Image.Image]
           ) -> list[tuple[Image.Image, Image.Image]]:
    """(region of the suspect's page picture, master image) for each image on the page;
    the master image is the one of that pixel size that looks most like the region."""
    per_point = RASTER_DPI / 72.0
    pairs = []
    for (width, height), (left, bottom, right, top) in boxes:
        x0, x1 = round(left * per_point), round(right * per_point)
        y0 = round((layout.height - top) * per_point)
        y1 = round((layout.height - bottom) * per_point)
        crop = suspect_ink[max(y0, 0):y1, max(x0, 0):x1]
        if crop.shape[0] < 96 or crop.shape[1] < 96:
            continue
        grey = Image.fromarray(np.uint8(np.clip(np.rint((1.0 - crop) * 255), 0, 255)))
        candidates = [p for p in master_pictures if p.size == (width, height)]
        if not candidates:
            continue
        target = _thumbnail(crop)
        picture = max(candidates, key=lambda p: float(np.sum(
            _thumbnail(1.0 - np.asarray(p.convert("L"), dtype=np.float64) / 255.0) * target)))
        pairs.append((grey, picture.convert("L")))
    return pairs


def _read_images(suspect: Sequence[Image.Image],
                 raster: Sequence[tuple[Image.Image, Image.Image]], key: bytes
                 ) -> list[ExtractResult]:
    """Blind reads of the suspect's images (a re-saved copy keeps their pixel grid), and
    informed reads of the image regions of pages that became pictures."""
    results = []
    for picture in suspect:
        result = read_picture(picture, key)
        if result is not None:
            results.append(result)
    for crop, picture in raster[:MAX_IMAGES_READ]:
        result = read_picture(crop, key, picture)
        if result is not None:
            results.append(result)
    return results


def _result(found: dict[str, int], reads: Sequence[Decoded],
            image_reads: Sequence[ExtractResult], *, informed: bool) -> ExtractResult:
    if not found:
        best = max(reads, key=lambda read: read.score, default=None)
        return ExtractResult(found=False, payload=None,
                             bit_errors=best.bit_errors if best else 0,
                             score=best.score if best else 0.0, informed=informed)
    votes = Counter(found.values())
    top = max(votes.values())
    payload = next(found[name] for name in ("text", "images", "identifier")
                   if name in found and votes[found[name]] == top)
    evidence = tuple(name for name in _CARRIERS if found.get(name) == payload)
    bit_errors, score = 0, 1.0  # the identifier alone: an exact keyed token
    text = [read for read in reads if read.payload == payload]
    pictures_read = [r for r in image_reads if r.found and r.payload == payload]
    if text:
        bit_errors, score = text[0].bit_errors, text[0].score
    elif pictures_read:
        bit_errors, score = pictures_read[0].bit_errors, pictures_read[0].score
    return ExtractResult(found=True, payload=payload, bit_errors=bit_errors, score=score,
                         informed=informed, evidence=evidence)
