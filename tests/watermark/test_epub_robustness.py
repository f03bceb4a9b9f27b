"""What an EPUB copy meets on its way to a leak, and which carriers still name the buyer.

Each attack is done with zipfile, lxml or unicodedata directly (tests/watermark/
epub_books.py), never with the library under test. Expected: repackaging and
re-serialising change nothing; stripping the identifier or the images leaves the text;
one chapter alone still reads; NFKC leaves the zero-width spaces; a zero-width filter
removes the text mark (the documented weakness), and then only the other carriers remain.
"""

from __future__ import annotations

import re
import zipfile

import pytest

from tests.watermark import epub_books as attack
from tests.watermark.test_epub import KEY, SHAPES, expected_evidence, payload_of
from watermark.document.epub import embed_epub_bytes, extract_epub_bytes


@pytest.fixture(scope="module")
def books() -> dict[str, bytes]:
    return attack.standard_books()


@pytest.fixture(scope="module")
def copies(books: dict[str, bytes]) -> dict[str, bytes]:
    return {title: embed_epub_bytes(data, KEY, payload_of(title)) for title, data in books.items()}


def _reads(data: bytes, title: str, evidence: tuple[str, ...],
           reference: bytes | None = None) -> None:
    result = extract_epub_bytes(data, KEY, reference=reference)
    assert result.found, title
    assert result.payload == payload_of(title)
    assert result.evidence == evidence, title


REPACKAGINGS = {
    "stored": lambda d: attack.repackage(d, compression=zipfile.ZIP_STORED),
    "deflate-9-reversed": lambda d: attack.repackage(d, level=9, reverse=True),
    "deflate-1": lambda d: attack.repackage(d, level=1),
}


@pytest.mark.parametrize("how", list(REPACKAGINGS))
def test_repackaging_changes_nothing(how: str, copies: dict[str, bytes]) -> None:
    for title in ("Freedoms", "Grants", "Versions"):
        suspect = REPACKAGINGS[how](copies[title])
        assert suspect != copies[title]
        _reads(suspect, title, expected_evidence(title))


def test_lxml_reserialised_xhtml_still_reads(copies: dict[str, bytes]) -> None:
    for title in SHAPES:
        suspect = attack.reserialise(copies[title])
        assert b"&#8203;" in suspect or b"\xe2\x80\x8b" not in suspect  # ASCII references
        _reads(suspect, title, expected_evidence(title))


def test_metadata_stripped_the_text_and_images_still_read(copies: dict[str, bytes]) -> None:
    for title in SHAPES:
        suspect = attack.strip_identifier(copies[title])
        assert b"urn:peermark:copy:" not in b"".join(c for _, c in attack.unzip(suspect))
        _reads(suspect, title, expected_evidence(title)[1:])


def test_images_removed_the_text_still_reads(copies: dict[str, bytes]) -> None:
    for title in ("Freedoms", "Documentation", "Grants", "Dedications"):
        suspect = attack.strip_identifier(attack.remove_images(copies[title]))
        _reads(suspect, title, ("text",))


def test_one_chapter_alone_still_reads(books: dict[str, bytes],
                                       copies: dict[str, bytes]) -> None:
    for title in SHAPES:
        suspect = attack.strip_identifier(attack.remove_images(attack.one_chapter(copies[title])))
        _reads(suspect, title, ("text",))
        if not SHAPES[title][1]:  # (an informed read of grey pictures is slow and pointless)
            _reads(suspect, title, ("text",), reference=books[title])


def test_nfkc_leaves_the_text_mark(copies: dict[str, bytes]) -> None:
    for title in ("Freedoms", "Libraries", "Versions"):
        suspect = attack.strip_identifier(attack.map_text(copies[title], "nfkc"))
        # NFKC turned the no-break spaces into spaces, and kept every U+200B
        assert "\u00a0" not in "".join(c.decode() for n, c in attack.unzip(suspect)
                                       if n.endswith(".xhtml"))
        _reads(suspect, title, expected_evidence(title)[1:])


def test_a_zero_width_filter_removes_the_text_mark(copies: dict[str, bytes]) -> None:
    for title in ("Freedoms", "Libraries"):
        stripped = attack.map_text(copies[title], "strip")
        expected = ("identifier", "images") if SHAPES[title][1] else ("identifier",)
        _reads(stripped, title, expected)
        nothing = attack.remove_images(attack.strip_identifier(stripped))
        result = extract_epub_bytes(nothing, KEY)
        assert not result.found
        assert result.evidence == ()


def test_rewrapped_lines_still_read(copies: dict[str, bytes]) -> None:
    for title in ("Freedoms", "Grants", "Versions"):
        suspect = attack.strip_identifier(attack.rewrap(copies[title], every=3))
        _reads(suspect, title, expected_evidence(title)[1:])


def test_a_broken_package_document_leaves_the_text(copies: dict[str, bytes]) -> None:
    for title in ("Libraries", "Dedications"):
        suspect = attack.break_package(attack.strip_identifier(copies[title]))
        _reads(suspect, title, expected_evidence(title)[1:])


def test_named_entities_of_an_epub_2_book_and_their_expansion() -> None:
    """EPUB 2 XHTML may use the XHTML 1.1 DTD's entities (&nbsp; &mdash; &eacute;), which
    the library keeps unexpanded; a tool that expands them does not move the mark."""
    spec = attack.BookSpec("Entities", 2, attack.chapters_from(["GPL-2"], 900, 3))
    data = attack.build(spec)
    named = []
    for name, original in attack.unzip(data):
        content = original
        if name.endswith(".xhtml"):
            content = (original.replace(b"&#160;", b"&nbsp;").replace(b"--", b"&mdash;")
                       .replace(b"software", b"softw&aacute;re"))
        named.append((name, content))
    master = attack.zip_members(named)
    copy = embed_epub_bytes(master, KEY, 77)
    assert b"&nbsp;" in b"".join(c for n, c in attack.unzip(copy) if n.endswith(".xhtml"))
    expanded = []
    for name, original in attack.unzip(copy):
        content = original
        if name.endswith(".xhtml"):
            content = (original.replace(b"&nbsp;", "\u00a0".encode())
                       .replace(b"&mdash;", "\u2014".encode())
                       .replace(b"&aacute;", "\u00e1".encode()))
        expanded.append((name, content))
    suspect = attack.strip_identifier(attack.zip_members(expanded))
    result = extract_epub_bytes(suspect, KEY)
    assert result.payload == 77
    assert result.evidence == ("text",)


def test_a_master_with_its_own_zero_width_spaces() -> None:
    """Zero-width spaces the master already has (URL breaking, Thai) are left alone by the
    embedder, are noise to a blind read and are ignored by an informed one."""
    data = attack.build(attack.BookSpec("Own", 3, attack.chapters_from(["GPL-3"], 900, 4)))
    own = []
    for name, original in attack.unzip(data):
        content = original
        if name.endswith(".xhtml") and "chapter" in name:
            count = 0

            def mark(match: re.Match[str]) -> str:
                nonlocal count
                count += 1
                return "\u200b " if count % 10 == 0 else " "

            content = re.sub(r">[^<]*<", lambda m: re.sub(" ", mark, m.group(0)),
                             original.decode()).encode()
        own.append((name, content))
    master = attack.zip_members(own)
    copy = attack.strip_identifier(embed_epub_bytes(master, KEY, 99))
    for reference in (None, master):
        result = extract_epub_bytes(copy, KEY, reference=reference)
        assert result.payload == 99
        assert result.evidence == ("text",)
    assert not extract_epub_bytes(master, KEY).found


def test_chapters_split_into_two_files_still_read(copies: dict[str, bytes]) -> None:
    for title in ("Grants", "Versions"):
        suspect = attack.strip_identifier(attack.split_chapters(copies[title]))
        names = [name for name, _ in attack.unzip(suspect)]
        assert "OEBPS/chapter1b.xhtml" in names
        _reads(suspect, title, expected_evidence(title)[1:])
