"""Bad PDFs get a clear error, from the check, the embedder and the reader alike, and no
copy: empty, truncated, damaged, encrypted, bombs, too many pages, bad arguments."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.watermark import pdf_documents as docs
from watermark.document.pdf import check_pdf, embed_pdf_bytes, extract_pdf_bytes, limits
from watermark.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedDocumentError,
)

KEY = bytes(range(32))

BAD: dict[str, tuple[Callable[[], bytes], type[Exception]]] = {
    "empty": (lambda: b"", CorruptDocumentError),
    "blank": (lambda: b" \n ", CorruptDocumentError),
    "not a pdf": (lambda: b"GIF89a" + b"\x00" * 100, CorruptDocumentError),
    "truncated": (lambda: docs.truncated(docs.text_pdf(pages=2)), CorruptDocumentError),
    "truncated in the header": (lambda: docs.text_pdf(pages=1)[:40], CorruptDocumentError),
    "damaged": (lambda: docs.damaged(docs.photo_pdf()), CorruptDocumentError),
    "encrypted, empty user password": (docs.encrypted_pdf, UnsupportedDocumentError),
    "encrypted with a password": (lambda: docs.encrypted_pdf("secret"),
                                  UnsupportedDocumentError),
    "arrays nested 200 deep": (docs.deep_nesting_pdf, DocumentTooLargeError),
    "too many pages": (lambda: docs.many_pages_pdf(limits.MAX_PAGES + 1),
                       DocumentTooLargeError),
}


@pytest.fixture(scope="module")
def bad() -> dict[str, bytes]:
    return {name: make() for name, (make, _error) in BAD.items()}


@pytest.mark.parametrize("name", list(BAD))
def test_refused_everywhere(name: str, bad: dict[str, bytes]) -> None:
    error = BAD[name][1]
    data = bad[name]
    with pytest.raises(error):
        check_pdf(data)
    with pytest.raises(error):
        embed_pdf_bytes(data, KEY, 1)
    with pytest.raises(error):
        extract_pdf_bytes(data, KEY)
    with pytest.raises(error):
        extract_pdf_bytes(docs.text_pdf(pages=1), KEY, reference=data)


@pytest.mark.parametrize("wrapper", [None, "hex", "a85"])
def test_a_pdf_bomb_is_refused(wrapper: str | None) -> None:
    """A content stream inflating to 300 MB, plain or behind an ASCII filter. (Each
    refusal inflates up to the 256 MB limit, so the embedder is tried on one only.)"""
    data = docs.bomb_pdf(wrapper=wrapper)
    with pytest.raises(DocumentTooLargeError, match="bomb"):
        check_pdf(data)
    if wrapper is None:
        with pytest.raises(DocumentTooLargeError):
            embed_pdf_bytes(data, KEY, 1)


def test_all_refusals_are_unsupported_document_errors() -> None:
    for _make, error in BAD.values():
        assert issubclass(error, UnsupportedDocumentError)


def test_no_pages_is_unsupported() -> None:
    import io

    import pikepdf

    pdf = pikepdf.new()
    buffer = io.BytesIO()
    pdf.save(buffer)
    with pytest.raises(UnsupportedDocumentError, match="no pages"):
        check_pdf(buffer.getvalue())


def test_the_bomb_is_not_inflated_whole() -> None:
    """The check stops at the limit, so the 300 MB never sit in memory."""
    import tracemalloc

    data = docs.bomb_pdf()
    tracemalloc.start()
    with pytest.raises(DocumentTooLargeError, match="bomb"):
        check_pdf(data)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 32 * 1024 * 1024


def test_bad_arguments() -> None:
    good = docs.text_pdf(pages=1)
    with pytest.raises(InvalidKeyError):
        embed_pdf_bytes(good, b"short", 1)
    with pytest.raises(InvalidPayloadError):
        embed_pdf_bytes(good, KEY, 1 << 64)
    with pytest.raises(InvalidPayloadError):
        embed_pdf_bytes(good, KEY, -1)
    with pytest.raises(InvalidKeyError):
        extract_pdf_bytes(good, b"short")
    with pytest.raises(CorruptDocumentError):
        check_pdf("not bytes")  # type: ignore[arg-type]


def test_an_empty_page_is_marked_with_the_identifier_only() -> None:
    copy = embed_pdf_bytes(docs.empty_page_pdf(), KEY, 99)
    result = extract_pdf_bytes(copy, KEY)
    assert (result.found, result.payload, result.evidence) == (True, 99, ("identifier",))


def test_a_page_with_broken_content_is_left_as_it_was() -> None:
    """One page's drawing does not parse (an unterminated string): the copy is still valid
    and the other pages are marked."""
    import io
    import subprocess
    import tempfile
    from pathlib import Path

    import pikepdf

    data = docs.text_pdf(pages=3)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.pages[1].obj.Contents = pdf.make_stream(b"BT /F1 10 Tf 72 700 Td (unterminated Tj")
        buffer = io.BytesIO()
        pdf.save(buffer)
    broken = buffer.getvalue()
    copy = embed_pdf_bytes(broken, KEY, 1234)
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        assert pdf.pages[1].Contents.read_bytes() == b"BT /F1 10 Tf 72 700 Td (unterminated Tj"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "copy.pdf"
        path.write_bytes(copy)
        assert subprocess.run(["qpdf", "--check", str(path)], check=False,
                              capture_output=True).returncode in (0, 3)
    result = extract_pdf_bytes(docs.strip_metadata(copy), KEY)
    assert (result.found, result.payload) == (True, 1234)


def test_damaged_bytes_give_a_refusal_or_a_valid_copy() -> None:
    """Bytes overwritten at random in a small PDF (header and %%EOF kept): each either
    raises an UnsupportedDocumentError or is marked into a copy that qpdf parses whole."""
    import io
    import random

    import pikepdf

    master = docs.text_pdf(pages=2, lines_per_page=20)
    rng = random.Random(20261203)
    outcomes = {"refused": 0, "marked": 0}
    for _ in range(16):
        data = bytearray(master)
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(20, len(data) - 30)
            data[at: at + rng.randrange(1, 12)] = rng.randbytes(rng.randrange(1, 12))
        try:
            copy = embed_pdf_bytes(bytes(data), KEY, 5)
        except UnsupportedDocumentError:
            outcomes["refused"] += 1
            continue
        with pikepdf.open(io.BytesIO(copy)) as pdf:
            assert len(pdf.pages) >= 1
        outcomes["marked"] += 1
    assert sum(outcomes.values()) == 16


# --------------------------------------------------------------- resource bombs and limits


@pytest.mark.parametrize("filters", [["/FlateDecode", "/FlateDecode"],
                                     ["/FlateDecode", "/LZWDecode"],
                                     ["/LZWDecode", "/FlateDecode"],
                                     ["/ASCIIHexDecode", "/FlateDecode", "/FlateDecode"]])
def test_stacked_decompressors_are_refused_everywhere(filters: list[str]) -> None:
    """Flate in Flate expands about a million times per layer: refused before decoding,
    even for a small, harmless stream."""
    data = docs.filtered_pdf(filters)
    for run in (lambda: check_pdf(data), lambda: embed_pdf_bytes(data, KEY, 1),
                lambda: extract_pdf_bytes(data, KEY)):
        with pytest.raises(UnsupportedDocumentError, match="filters"):
            run()


@pytest.mark.parametrize("filters", [["/FlateDecode"], ["/LZWDecode"],
                                     ["/ASCIIHexDecode", "/FlateDecode"],
                                     ["/ASCIIHexDecode", "/LZWDecode"]])
def test_one_decompressor_behind_ascii_filters_is_accepted(filters: list[str]) -> None:
    assert check_pdf(docs.filtered_pdf(filters)) == check_pdf(docs.filtered_pdf([]))


def test_a_content_stream_shared_by_many_pages_counts_for_each() -> None:
    """The content budget counts a shared stream once per page that draws it: a quarter of
    the budget (plus one byte) is fine on 3 pages and refused on 4."""
    content = b" " * (limits.MAX_CONTENT_BYTES // 4 + 1)
    assert check_pdf(docs.shared_content_pdf(3, content)).pages == 3
    data = docs.shared_content_pdf(4, content)
    for run in (lambda: check_pdf(data), lambda: embed_pdf_bytes(data, KEY, 1),
                lambda: extract_pdf_bytes(data, KEY)):
        with pytest.raises(DocumentTooLargeError, match="page content"):
            run()


def test_operators_are_counted_per_page_and_per_document() -> None:
    """A page may hold the page limit of operators, not one more; as many such pages as
    fit in the document limit are fine, one more page is not (one stream shared by all)."""
    page = b"q\n" * limits.MAX_PAGE_OPERATORS
    assert check_pdf(docs.shared_content_pdf(1, page)).pages == 1
    with pytest.raises(DocumentTooLargeError, match="operators"):
        check_pdf(docs.shared_content_pdf(1, page + b"Q\n"))
    fit = limits.MAX_CONTENT_OPERATORS // limits.MAX_PAGE_OPERATORS
    assert check_pdf(docs.shared_content_pdf(fit, page)).pages == fit
    data = docs.shared_content_pdf(fit + 1, page)
    with pytest.raises(DocumentTooLargeError, match="operators in all"):
        check_pdf(data)
    with pytest.raises(DocumentTooLargeError, match="operators in all"):
        embed_pdf_bytes(data, KEY, 1)


def test_text_pages_are_found_without_parsing_each_page() -> None:
    shows = b"BT /F1 9 Tf (a) Tj ET"
    assert check_pdf(docs.shared_content_pdf(3, shows)).text_pages == 3
    assert check_pdf(docs.shared_content_pdf(3, b"q (Tj) Tj Q")).text_pages == 3
    assert check_pdf(docs.shared_content_pdf(3, b"q 0 0 9 9 re f Q")).text_pages == 0


@pytest.mark.parametrize(("media_box", "user_unit", "refused"), [
    (b"0 0 %d 612" % limits.MAX_PAGE_SIDE, None, False),
    (b"0 0 %d 612" % (limits.MAX_PAGE_SIDE + 1), None, True),
    (b"-10 0 10 %d" % (limits.MAX_PAGE_SIDE // 2 + 1), 2.0, True),
    (b"0 0 612 792", limits.MAX_PAGE_SIDE / 792 * 1.01, True),
])
def test_pages_past_the_size_limit_are_refused(media_box: bytes, user_unit: float | None,
                                               refused: bool) -> None:
    data = docs.shared_content_pdf(1, b"q Q", media_box, user_unit)
    if not refused:
        assert check_pdf(data).pages == 1
        return
    with pytest.raises(DocumentTooLargeError, match="inches"):
        check_pdf(data)
    with pytest.raises(DocumentTooLargeError, match="inches"):
        extract_pdf_bytes(docs.text_pdf(pages=1), KEY, reference=data)


def test_page_renders_are_capped() -> None:
    """A render past the pixel cap is not made; a thumbnail is made at the scale that
    fits. The largest page the check accepts is far past the cap at 150 dpi."""
    import math

    import pypdfium2 as pdfium

    from watermark.document.pdf import codec

    side = limits.MAX_PAGE_SIDE
    assert (side * codec.RASTER_DPI / 72) ** 2 > limits.MAX_RENDER_PIXELS
    document = pdfium.PdfDocument(docs.shared_content_pdf(1, b"q Q", b"0 0 %d %d" % (
        side, side)))
    try:
        page = document[0]
        assert codec._ink(page, codec.RASTER_DPI) is None
        small = codec._ink(page, 2 * 72 * math.sqrt(limits.MAX_RENDER_PIXELS) / side,
                           fit=True)
        assert small is not None
        assert small.dtype.name == "float32"
        assert small.size <= limits.MAX_RENDER_PIXELS
        page.close()
    finally:
        document.close()


def test_an_informed_read_renders_a_bounded_number_of_pages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from watermark.document.pdf import codec

    renders: list[float] = []
    ink = codec._ink

    def counting(page: object, dpi: float, *, fit: bool = False) -> object:
        if dpi == codec.RASTER_DPI:
            renders.append(dpi)
        return ink(page, dpi, fit=fit)  # type: ignore[arg-type]

    monkeypatch.setattr(codec, "MAX_PAGES_RENDERED", 2)
    monkeypatch.setattr(codec, "_ink", counting)
    suspect = docs.shared_content_pdf(5, b"q 0 0 9 9 re f Q")  # 5 pages without text
    extract_pdf_bytes(suspect, KEY, reference=docs.text_pdf(pages=1, lines_per_page=5))
    assert len(renders) == 2


def test_the_reader_decodes_only_the_largest_declared_images(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Images are ranked by the Width x Height of their dictionaries; only the
    `MAX_IMAGES_READ` largest are decoded."""
    import io

    import pikepdf

    from watermark.document.pdf import images

    count = limits.MAX_IMAGES_READ + 4
    sizes = [(8 + (n * 7) % count, 8) for n in range(count)]  # widths 8.., shuffled
    decoded: list[int] = []
    decode = images.decode_image

    def recording(stream: pikepdf.Stream) -> object:
        decoded.append(int(stream.Width))
        return decode(stream)

    monkeypatch.setattr(images, "decode_image", recording)
    with pikepdf.open(io.BytesIO(docs.image_sizes_pdf(sizes))) as pdf:
        found = images.pictures(pdf)
    largest = sorted((width for width, _height in sizes), reverse=True)
    assert sorted(decoded, reverse=True) == largest[:limits.MAX_IMAGES_READ]
    assert [picture.width for picture in found] == largest[:limits.MAX_IMAGES_READ]


def test_an_image_not_the_size_its_dictionary_says_is_not_read() -> None:
    """A JPEG behind an ASCIIHex filter (decoded by pikepdf, not by the DCT shortcut)
    whose dictionary declares twice its width is left alone."""
    import io

    import pikepdf
    from PIL import Image

    from watermark.document.pdf import images

    buffer = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buffer, "JPEG")
    with pikepdf.open(io.BytesIO(docs.image_sizes_pdf([(16, 16)]))) as pdf:
        (stream,) = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream)
                     and obj.get("/Subtype") == pikepdf.Name.Image]
        stream.write(buffer.getvalue().hex().encode() + b">",
                     filter=pikepdf.Array([pikepdf.Name.ASCIIHexDecode,
                                           pikepdf.Name.DCTDecode]))
        assert images.decode_image(stream) is not None
        stream.Width = 32
        assert images.decode_image(stream) is None
