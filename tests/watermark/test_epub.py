"""The EPUB mark on real books: round trips, no mark where there is none, a copy a reader
cannot tell from the master, the same bytes in every process, and epubcheck.

Books are built from Debian's licence texts and scikit-image's photographs
(tests/watermark/epub_books.py); what a copy must keep is read back with zipfile and lxml,
not with the code under test.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from tests.watermark.epub_books import DC, OPF, body_text, standard_books, unzip, visible
from watermark.document.epub import EpubInfo, check_epub, embed_epub_bytes, extract_epub_bytes
from watermark.document.identifier import find_identifiers, read_identifier

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
#: book -> (content documents, images) as built by epub_books.standard_books
SHAPES = {"Freedoms": (5, 2), "Documentation": (4, 1), "Grants": (5, 2), "Libraries": (4, 0),
          "Versions": (6, 0), "Dedications": (3, 1)}
CARRIER = "\u200b"


def payload_of(title: str) -> int:
    return int.from_bytes(hashlib.sha256(title.encode()).digest()[:8], "big")


@pytest.fixture(scope="module")
def books() -> dict[str, bytes]:
    return standard_books()


@pytest.fixture(scope="module")
def copies(books: dict[str, bytes]) -> dict[str, bytes]:
    return {title: embed_epub_bytes(data, KEY, payload_of(title)) for title, data in books.items()}


def expected_evidence(title: str) -> tuple[str, ...]:
    return ("identifier", "text", "images") if SHAPES[title][1] else ("identifier", "text")


def test_check_epub_counts_documents_images_and_characters(books: dict[str, bytes],
                                                           copies: dict[str, bytes]) -> None:
    for title, data in books.items():
        info = check_epub(data)
        assert isinstance(info, EpubInfo)
        assert (info.documents, info.images) == SHAPES[title]
        assert info.characters > 8000
        # the carriers are not characters a reader sees
        assert check_epub(copies[title]) == info


@pytest.mark.parametrize("title", list(SHAPES))
def test_blind_and_informed_reads_give_the_payload(title: str, books: dict[str, bytes],
                                                   copies: dict[str, bytes]) -> None:
    blind = extract_epub_bytes(copies[title], KEY)
    assert blind.found
    assert blind.payload == payload_of(title)
    assert blind.evidence == expected_evidence(title)
    assert not blind.informed
    informed = extract_epub_bytes(copies[title], KEY, reference=books[title])
    assert informed.found
    assert informed.payload == payload_of(title)
    assert informed.evidence == expected_evidence(title)
    assert informed.informed


def test_no_mark_on_masters_or_under_another_key(books: dict[str, bytes],
                                                 copies: dict[str, bytes]) -> None:
    for title, data in books.items():
        for suspect, key in ((data, KEY), (copies[title], OTHER_KEY)):
            result = extract_epub_bytes(suspect, key)
            assert not result.found
            assert result.payload is None
            assert result.evidence == ()
        if title in {"Libraries", "Dedications"}:  # informed image reads take seconds
            assert not extract_epub_bytes(data, KEY, reference=data).found


def test_two_buyers_copies_differ_and_each_reads_its_own(books: dict[str, bytes]) -> None:
    data = books["Versions"]
    first, second = (embed_epub_bytes(data, KEY, payload) for payload in (1, 2**64 - 1))
    assert first != second
    assert extract_epub_bytes(first, KEY).payload == 1
    assert extract_epub_bytes(second, KEY).payload == 2**64 - 1


def test_a_reader_sees_the_same_book(books: dict[str, bytes], copies: dict[str, bytes]) -> None:
    for title, data in books.items():
        master = dict(unzip(data))
        copy = unzip(copies[title])
        # same members, same order, mimetype first and stored, the master's timestamps
        assert [name for name, _ in copy] == list(master)
        with zipfile.ZipFile(io.BytesIO(copies[title])) as archive:
            infos = archive.infolist()
        assert infos[0].filename == "mimetype"
        assert infos[0].compress_type == zipfile.ZIP_STORED
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert [i.date_time for i in infos] == [i.date_time for i in archive.infolist()]
        carriers = 0
        for name, content in copy:
            if name.endswith(".xhtml") and "chapter" in name:
                text = body_text(content)
                assert visible(text) == body_text(master[name])
                carriers += text.count(CARRIER)
                root = etree.fromstring(content)
                for element in root.iter():
                    assert all(CARRIER not in value for value in element.attrib.values())
                    if etree.QName(element).localname in {"pre", "code", "title"}:
                        assert CARRIER not in "".join(element.itertext())
            elif name.endswith((".css", ".ncx", "nav.xhtml", "mimetype", "container.xml")):
                assert content == master[name], name
        assert carriers > 500


def test_the_package_keeps_its_unique_identifier_and_gains_a_keyed_one(
        books: dict[str, bytes], copies: dict[str, bytes]) -> None:
    for title, data in books.items():
        before = etree.fromstring(dict(unzip(data))["OEBPS/content.opf"])
        after = etree.fromstring(dict(unzip(copies[title]))["OEBPS/content.opf"])
        unique = before.get("unique-identifier")
        assert after.get("unique-identifier") == unique
        ids = {e.get("id"): e.text for e in after.iter(f"{{{DC}}}identifier")}
        original = {e.get("id"): e.text for e in before.iter(f"{{{DC}}}identifier")}
        assert ids[unique] == original[unique]
        assert read_identifier(ids["peermark-copy"], KEY) == payload_of(title)
        assert read_identifier(ids["peermark-copy"], OTHER_KEY) is None
        assert find_identifiers(etree.tostring(after).decode()) == [ids["peermark-copy"]]
        assert after.find(f"{{{OPF}}}manifest") is not None


def test_the_same_copy_in_every_process(books: dict[str, bytes],
                                        copies: dict[str, bytes]) -> None:
    script = (
        "import hashlib, json\n"
        "from tests.watermark.epub_books import standard_books\n"
        "from watermark.document.epub import embed_epub_bytes\n"
        # KEY and payload_of as defined above: importing this module would import
        # tests.conftest, which needs Django set up
        f"KEY = {KEY!r}\n"
        "def payload_of(t):\n"
        "    return int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], 'big')\n"
        "books = standard_books()\n"
        "print(json.dumps({t: hashlib.sha256(embed_epub_bytes(books[t], KEY, payload_of(t)))"
        ".hexdigest() for t in ('Freedoms', 'Grants', 'Libraries')}))\n")
    root = Path(__file__).resolve().parents[2]
    runs = [subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    here = {t: hashlib.sha256(copies[t]).hexdigest() for t in ("Freedoms", "Grants", "Libraries")}
    assert [json.loads(run.stdout) for run in runs] == [here, here]


def epubcheck_command() -> list[str] | None:
    """Debian's epubcheck: /usr/bin/epubcheck is the jar itself (run through binfmt where
    that is registered, else with java -jar)."""
    path = shutil.which("epubcheck")
    if path is None:
        return None
    real = os.path.realpath(path)
    if real.endswith(".jar"):
        java = shutil.which("java")
        return None if java is None else [java, "-XX:TieredStopAtLevel=1", "-jar", real]
    return [path]


@pytest.mark.slow
def test_epubcheck_passes_masters_and_their_copies(books: dict[str, bytes],
                                                   copies: dict[str, bytes]) -> None:
    command = epubcheck_command()
    if command is None:
        # imported here: the EPUB benchmark imports this module without Django set up
        from tests.conftest import _skip_or_fail

        _skip_or_fail("epubcheck is not installed (apt-get install epubcheck)")
    chosen = ["Freedoms", "Grants"]  # an EPUB 3 and an EPUB 2, both with photographs
    with tempfile.TemporaryDirectory() as folder:
        jobs = []
        for title in chosen:
            for kind, data in (("master", books[title]), ("copy", copies[title])):
                path = Path(folder) / f"{title}-{kind}.epub"
                path.write_bytes(data)
                jobs.append((path.name, subprocess.Popen(
                    [*command, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)))
        for name, job in jobs:
            output, _ = job.communicate(timeout=180)
            assert job.returncode == 0, f"{name}: {output}"
            assert "0 errors / 0 warnings" in output, f"{name}: {output}"
