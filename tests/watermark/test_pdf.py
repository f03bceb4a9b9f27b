"""The PDF mark (watermark.document.pdf): round trips, what a leaker does to a copy, and
the properties the platform relies on (no mark without the key, same bytes everywhere,
valid output).

Documents come from tests/watermark/pdf_documents.py; expected values are what those
were built with (pages, images, the payload put in), never computed by the code under test.
Copies are read back with the tools a leaker would use (qpdf, Ghostscript, poppler).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest

from tests.conftest import _skip_or_fail
from tests.watermark import pdf_documents as docs
from watermark.document.pdf import PdfInfo, check_pdf, embed_pdf_bytes, extract_pdf_bytes

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PAYLOAD = 0x5EED_F00D_CAFE_0042



@pytest.fixture(autouse=True)
def _tools() -> None:
    """The leaker's tools and the independent readers: .ci/run installs them, so in CI a
    missing one fails rather than skips the tests."""
    if not all(shutil.which(tool) for tool in ("qpdf", "gs", "pdftoppm", "pdftotext")):
        _skip_or_fail("needs qpdf, Ghostscript and poppler (apt-get install qpdf "
                      "ghostscript poppler-utils)")


@dataclass(frozen=True)
class Case:
    name: str
    master: bytes
    copy: bytes
    pages: int
    images: int
    has_text: bool


def _case(name: str, master: bytes, pages: int, images: int, *, has_text: bool = True
          ) -> Case:
    return Case(name, master, embed_pdf_bytes(master, KEY, PAYLOAD), pages, images, has_text)


@pytest.fixture(scope="module")
def text_case() -> Case:
    return _case("text", docs.text_pdf(pages=4), 4, 0)


@pytest.fixture(scope="module")
def photo_case() -> Case:
    return _case("photo", docs.photo_pdf(), 3, 3)


@pytest.fixture(scope="module")
def justified_case() -> Case:
    return _case("justified", docs.justified_pdf(), 3, 0)


@pytest.fixture(scope="module")
def real_case() -> Case:
    return _case("libtasn1", docs.real(docs.LIBTASN1), 36, 0)


@pytest.fixture(scope="module")
def image_only_case() -> Case:
    return _case("image-only", docs.photo_pdf(with_text=False), 3, 3, has_text=False)


CASES = ["text_case", "photo_case", "justified_case", "real_case"]


def _pages(data: bytes) -> int:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return len(pdf.pages)


def _text(data: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, check=True,
                          capture_output=True)
    return done.stdout.decode("utf-8", "replace")


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", CASES)
def test_a_copy_reads_back_blind_and_informed(name: str, request: pytest.FixtureRequest
                                              ) -> None:
    case: Case = request.getfixturevalue(name)
    for reference in (None, case.master):
        result = extract_pdf_bytes(case.copy, KEY, reference)
        assert result.found
        assert result.payload == PAYLOAD
        assert result.informed is (reference is not None)
        expected = {"identifier", "text"} | ({"images"} if case.images else set())
        assert set(result.evidence) == expected


def test_an_image_only_copy_reads_from_its_images(image_only_case: Case) -> None:
    result = extract_pdf_bytes(image_only_case.copy, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert result.evidence == ("identifier", "images")


def test_check_pdf_counts_pages_images_and_text(photo_case: Case, image_only_case: Case,
                                                real_case: Case) -> None:
    assert check_pdf(photo_case.master) == PdfInfo(pages=3, images=3, text_pages=3)
    assert check_pdf(image_only_case.master) == PdfInfo(pages=3, images=3, text_pages=0)
    assert check_pdf(real_case.master) == PdfInfo(pages=36, images=0, text_pages=36)
    assert check_pdf(docs.empty_page_pdf()) == PdfInfo(pages=1, images=0, text_pages=0)


def test_the_copy_keeps_pages_text_and_image_sizes(text_case: Case, photo_case: Case,
                                                   real_case: Case) -> None:
    for case in (text_case, photo_case, real_case):
        assert _pages(case.copy) == case.pages
        # the same characters in the same order (a word moved 0.4 pt towards a lone
        # punctuation mark may be read by poppler as one word with it)
        assert "".join(_text(case.copy).split()) == "".join(_text(case.master).split())
    assert docs.image_pixels(photo_case.copy) == docs.image_pixels(photo_case.master)


# ------------------------------------------------------------------ what a leaker does


@pytest.mark.parametrize("name", ["text_case", "real_case", "photo_case"])
def test_read_after_qpdf_resave(name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(name)
    result = extract_pdf_bytes(docs.qpdf_resave(case.copy), KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert "text" in result.evidence
    assert "identifier" in result.evidence


@pytest.mark.parametrize("name", ["text_case", "justified_case", "real_case", "photo_case"])
def test_read_after_ghostscript_pdfwrite(name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(name)
    suspect = docs.gs_pdfwrite(case.copy)
    result = extract_pdf_bytes(suspect, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert "text" in result.evidence
    if case.images:
        assert "images" in result.evidence


@pytest.mark.parametrize(("name", "pages"), [("text_case", (1, 3)), ("justified_case", (0, 2)),
                                             ("real_case", (20, 21)), ("photo_case", (0, 2))])
def test_read_any_two_pages(name: str, pages: tuple[int, int], request: pytest.FixtureRequest
                            ) -> None:
    case: Case = request.getfixturevalue(name)
    suspect = docs.strip_metadata(docs.extract_pages(case.copy, pages))
    assert _pages(suspect) == 2
    for reference in (None, case.master):
        result = extract_pdf_bytes(suspect, KEY, reference)
        assert (result.found, result.payload) == (True, PAYLOAD)
        assert "identifier" not in result.evidence


def test_read_with_the_identifier_stripped(photo_case: Case, real_case: Case) -> None:
    for case in (photo_case, real_case):
        suspect = docs.strip_metadata(case.copy)
        result = extract_pdf_bytes(suspect, KEY)
        assert (result.found, result.payload) == (True, PAYLOAD)
        assert "identifier" not in result.evidence
        assert "text" in result.evidence
    assert extract_pdf_bytes(docs.strip_metadata(photo_case.copy), KEY).evidence == (
        "text", "images")


def test_the_identifier_alone_survives_extraction_and_qpdf(text_case: Case) -> None:
    """Pages carry the token too, so a plain page extraction keeps it."""
    suspect = docs.extract_pages(text_case.copy, (0, 1))
    assert "identifier" in extract_pdf_bytes(suspect, KEY).evidence


@pytest.mark.parametrize(("name", "pages"), [("text_case", (2, 3)), ("justified_case", (1, 2)),
                                             ("image_only_case", (1, 2))])
def test_read_rasterised_at_150_dpi_informed(name: str, pages: tuple[int, int],
                                             request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(name)
    suspect = docs.rasterise(case.copy, 150, pages)
    assert check_pdf(suspect).text_pages == 0
    blind = extract_pdf_bytes(suspect, KEY)
    assert not blind.found  # pictures of text: no text layer, and page pictures not marked
    result = extract_pdf_bytes(suspect, KEY, case.master)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert result.evidence == (("text",) if case.has_text else ("images",))


# ------------------------------------------------------------------ no mark


@pytest.mark.parametrize("name", ["text_case", "photo_case", "real_case"])
def test_no_mark_without_the_key_or_in_the_master(name: str, request: pytest.FixtureRequest
                                                  ) -> None:
    case: Case = request.getfixturevalue(name)
    reads = [(case.master, KEY, None), (case.copy, OTHER_KEY, None)]
    if name != "real_case":  # informed reads of 36 pages: the benchmark has them
        reads += [(case.master, KEY, case.master), (case.copy, OTHER_KEY, case.master)]
    for suspect, key, reference in reads:
        result = extract_pdf_bytes(suspect, key, reference)
        assert not result.found
        assert result.payload is None
        assert result.evidence == ()


def test_another_payload_is_read_as_itself(text_case: Case) -> None:
    other = embed_pdf_bytes(text_case.master, KEY, PAYLOAD ^ 1)
    assert extract_pdf_bytes(other, KEY).payload == PAYLOAD ^ 1
    assert other != text_case.copy


# ------------------------------------------------------------------ platform properties


def test_the_same_bytes_in_two_processes(photo_case: Case, tmp_path: Path) -> None:
    master = tmp_path / "master.pdf"
    master.write_bytes(photo_case.master)
    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from watermark.document.pdf import embed_pdf_bytes\n"
        f"copy = embed_pdf_bytes(Path({str(master)!r}).read_bytes(), bytes(range(32)), "
        f"{PAYLOAD}, licensed_to='A. Buyer')\n"
        "print(hashlib.sha256(copy).hexdigest())\n")
    root = Path(__file__).resolve().parents[2]
    digests = [subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip() for _ in range(2)]
    here = hashlib.sha256(embed_pdf_bytes(photo_case.master, KEY, PAYLOAD,
                                          licensed_to="A. Buyer")).hexdigest()
    assert digests == [here, here]
    assert json.dumps(digests)  # two 64-hex digests
    assert len(here) == 64


@pytest.mark.parametrize("name", ["text_case", "photo_case", "justified_case", "real_case",
                                  "image_only_case"])
def test_copies_are_valid_for_qpdf_and_poppler(name: str, request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    case: Case = request.getfixturevalue(name)
    path = tmp_path / "copy.pdf"
    path.write_bytes(case.copy)
    checked = subprocess.run(["qpdf", "--check", str(path)], check=False,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No syntax or stream encoding errors" in checked.stdout
    rendered = subprocess.run(["pdftoppm", "-r", "20", "-png", str(path), str(tmp_path / "p")],
                              check=False, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr == ""
    assert len(list(tmp_path.glob("p*.png"))) == case.pages


def test_licensed_to_line_on_every_page(text_case: Case) -> None:
    copy = embed_pdf_bytes(text_case.master, KEY, PAYLOAD, licensed_to="Ana Müller (ACME)")
    pages = _text(copy).split("\f")
    assert sum("Licensed to Ana Müller (ACME)" in page for page in pages) == 4
    assert "Licensed to" not in _text(text_case.copy)
    result = extract_pdf_bytes(copy, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert "text" in result.evidence
    assert extract_pdf_bytes(docs.strip_metadata(copy), KEY, text_case.master).payload == PAYLOAD


def test_the_text_moves_by_fractions_of_a_point(text_case: Case) -> None:
    """Word positions of poppler's reading, copy against master: nothing moved by more
    than half a point (the mark's shifts are 0.4 pt), and some moved."""
    def boxes(data: bytes) -> list[tuple[float, float]]:
        done = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"],
                              input=data, check=True, capture_output=True)
        import re

        return [(float(x), float(y)) for x, y in re.findall(
            rb'<word xMin="([\d.]+)" yMin="([\d.]+)"', done.stdout)]
    master, copy = boxes(text_case.master), boxes(text_case.copy)
    assert len(master) == len(copy) > 300
    moves = [max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(master, copy, strict=True)]
    assert max(moves) <= 0.5
    assert sum(move > 0.2 for move in moves) > 100
