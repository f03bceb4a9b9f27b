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
