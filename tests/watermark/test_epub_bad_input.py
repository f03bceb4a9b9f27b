"""EPUBs the library must refuse with a clear error, never a damaged copy: broken or
truncated archives, missing structure, DRM, zip bombs (declared and lying), unsafe names;
and the odd books it must still mark: images only, a few words, obfuscated fonts."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.watermark import epub_books as eb
from tests.watermark.test_epub import KEY
from watermark.document.epub import check_epub, embed_epub_bytes, extract_epub_bytes, limits
from watermark.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmbedCheckError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedDocumentError,
)

PAYLOAD = 0x0123_4567_89AB_CDEF


def small_spec(**changes: object) -> eb.BookSpec:
    spec = eb.BookSpec("Small", 3, eb.chapters_from(["Apache-2.0"], 400, 2))
    for name, value in changes.items():
        setattr(spec, name, value)
    return spec


@pytest.fixture(scope="module")
def small() -> bytes:
    return eb.build(small_spec())


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    return eb.unzip(data)


def rebuilt(data: bytes, *, drop: tuple[str, ...] = (),
            change: dict[str, bytes] | None = None,
            add: list[tuple[str, bytes]] | None = None) -> bytes:
    out = [(n, (change or {}).get(n, c)) for n, c in members_of(data) if n not in drop]
    return eb.zip_members(out + (add or []))


def refused(data: bytes, error: type[Exception]) -> None:
    """Every entry point refuses `data` with `error` (so no copy is ever handed out)."""
    with pytest.raises(error):
        check_epub(data)
    with pytest.raises(error):
        embed_epub_bytes(data, KEY, PAYLOAD)


# -- broken archives and structure -------------------------------------------------------

def test_not_an_archive_or_truncated(small: bytes) -> None:
    for data in (b"", b"hello", b"PK\x03\x04" + bytes(100)):
        refused(data, CorruptDocumentError)
        with pytest.raises(CorruptDocumentError):
            extract_epub_bytes(data, KEY)
    for cut in (len(small) // 3, len(small) // 2, len(small) - 30, len(small) - 1):
        refused(small[:cut], CorruptDocumentError)


def test_a_damaged_member_is_refused(small: bytes) -> None:
    damaged = bytearray(small)
    position = small.index(b"chapter1.xhtml") + 60  # inside the first chapter's deflate data
    damaged[position : position + 8] = b"\x00" * 8
    refused(bytes(damaged), CorruptDocumentError)


OPF_NAME = "OEBPS/content.opf"


@pytest.mark.parametrize("case", ["no-mimetype", "wrong-mimetype", "no-container",
                                  "no-rootfile", "no-opf", "malformed-opf", "not-opf",
                                  "no-spine", "malformed-xhtml", "missing-chapter",
                                  "deep-nesting"])
def test_missing_or_malformed_structure(case: str, small: bytes) -> None:
    opf = dict(members_of(small))[OPF_NAME]
    broken = {
        "no-mimetype": lambda: rebuilt(small, drop=("mimetype",)),
        "wrong-mimetype": lambda: rebuilt(small, change={"mimetype": b"application/zip"}),
        "no-container": lambda: rebuilt(small, drop=("META-INF/container.xml",)),
        "no-rootfile": lambda: rebuilt(small, change={"META-INF/container.xml": (
            b'<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            b'version="1.0"><rootfiles/></container>')}),
        "no-opf": lambda: rebuilt(small, drop=(OPF_NAME,)),
        "malformed-opf": lambda: rebuilt(small, change={OPF_NAME: opf[:-40]}),
        "not-opf": lambda: rebuilt(small, change={OPF_NAME: b"<html/>"}),
        "no-spine": lambda: rebuilt(small, change={OPF_NAME: opf.replace(
            b"<spine", b"<notspine").replace(b"</spine>", b"</notspine>")}),
        "malformed-xhtml": lambda: rebuilt(small, change={
            "OEBPS/chapter1.xhtml": b"<html><body><p>unclosed</body></html>"}),
        "missing-chapter": lambda: rebuilt(small, drop=("OEBPS/chapter2.xhtml",)),
        # libxml2's depth limit (256) holds: no recursion in the library goes deeper
        "deep-nesting": lambda: rebuilt(small, change={"OEBPS/chapter1.xhtml": (
            b'<html xmlns="http://www.w3.org/1999/xhtml"><body>' + b"<span>a b " * 300
            + b"</span>" * 300 + b"</body></html>")}),
    }[case]()
    refused(broken, CorruptDocumentError)


def _with_entities(small: bytes, levels: int) -> tuple[bytes, bytes]:
    declarations = "".join(f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, levels))
    chapter = dict(members_of(small))["OEBPS/chapter1.xhtml"].decode()
    body = chapter[chapter.index("<body>") :]
    xhtml = (f'<!DOCTYPE html [<!ENTITY e0 "lol">{declarations}]>\n'
             '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head>'
             + body.replace("<h1>", f"<h1>&e{levels - 1}; ", 1)).encode()
    return rebuilt(small, change={"OEBPS/chapter1.xhtml": xhtml}), xhtml


def test_internal_entities_are_never_expanded(small: bytes) -> None:
    """A "billion laughs" internal subset is refused by libxml2's amplification guard; a
    harmless one is kept as references (nothing is expanded) and the book is marked."""
    bomb, _ = _with_entities(small, 10)
    refused(bomb, CorruptDocumentError)
    mild, xhtml = _with_entities(small, 5)  # would expand to 30,000 characters
    copy = embed_epub_bytes(mild, KEY, PAYLOAD)
    marked = dict(members_of(copy))["OEBPS/chapter1.xhtml"]
    assert b"&e4;" in marked
    assert b"lol" not in marked.split(b"]>")[1]
    assert len(marked) < 2 * len(xhtml)
    assert extract_epub_bytes(copy, KEY).payload == PAYLOAD


def test_no_content_document_is_unsupported(small: bytes) -> None:
    opf = dict(members_of(small))[OPF_NAME]
    empty = opf.replace(b'<itemref idref="c1"/>', b"").replace(b'<itemref idref="c2"/>', b"")
    data = rebuilt(small, change={OPF_NAME: empty})
    with pytest.raises(UnsupportedDocumentError) as caught:
        embed_epub_bytes(data, KEY, PAYLOAD)
    assert not isinstance(caught.value, CorruptDocumentError)


# -- DRM ---------------------------------------------------------------------------------

def _encryption(algorithm: str, uri: str) -> bytes:
    return (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData>'
        f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData>'
        "</encryption>").encode()


def test_drm_is_refused_as_unsupported(small: bytes) -> None:
    aes = _encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/chapter1.xhtml")
    for extra in ([("META-INF/encryption.xml", aes)],
                  [("META-INF/rights.xml", b"<rights/>")]):
        data = rebuilt(small, add=extra)
        with pytest.raises(UnsupportedDocumentError) as caught:
            embed_epub_bytes(data, KEY, PAYLOAD)
        assert not isinstance(caught.value, CorruptDocumentError | DocumentTooLargeError)
        assert "DRM" in str(caught.value)


def test_obfuscated_fonts_are_not_drm(small: bytes) -> None:
    font = _encryption("http://www.idpf.org/2008/embedding", "OEBPS/fonts/serif.otf")
    data = rebuilt(small, add=[("META-INF/encryption.xml", font),
                               ("OEBPS/fonts/serif.otf", bytes(range(256)) * 8)])
    copy = embed_epub_bytes(data, KEY, PAYLOAD)
    assert dict(members_of(copy))["OEBPS/fonts/serif.otf"] == bytes(range(256)) * 8
    assert extract_epub_bytes(copy, KEY).payload == PAYLOAD


# -- zip bombs and unsafe names ---------------------------------------------------------

def test_a_zip_bomb_is_refused_from_its_directory(small: bytes) -> None:
    bomb = rebuilt(small, add=[("OEBPS/zeros.bin", bytes(20 * 1024 * 1024))])
    assert len(bomb) < 200_000
    refused(bomb, DocumentTooLargeError)
    with pytest.raises(DocumentTooLargeError):
        extract_epub_bytes(bomb, KEY)


def _lie_about_size(data: bytes, name: str, declared: int) -> bytes:
    """Patch the central directory and local header of `name` to declare `declared` bytes."""
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<L", patched, info.header_offset + 22, declared)
    central = data.index(b"PK\x01\x02" + data[data.index(b"PK\x01\x02") + 4 :][:0])
    while True:
        length = struct.unpack_from("<H", patched, central + 28)[0]
        if bytes(patched[central + 46 : central + 46 + length]) == name.encode():
            struct.pack_into("<L", patched, central + 24, declared)
            return bytes(patched)
        extra, comment = struct.unpack_from("<HH", patched, central + 30)
        central += 46 + length + extra + comment


def test_a_member_that_inflates_past_its_declared_size_is_refused(small: bytes) -> None:
    # 900 KiB of text-like data (under the ratio check's threshold) declared as 1000 bytes
    filler = (b"lorem ipsum dolor sit amet " * 40_000)[:900 * 1024]
    data = rebuilt(small, add=[("OEBPS/notes.txt", filler)])
    lying = _lie_about_size(data, "OEBPS/notes.txt", 1000)
    refused(lying, DocumentTooLargeError)


@pytest.mark.parametrize(("limit", "value"), [("MAX_MEMBERS", 5), ("MAX_MEMBER_BYTES", 3000),
                                              ("MAX_TOTAL_BYTES", 8000)])
def test_size_and_count_limits(limit: str, value: int, small: bytes,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, limit, value)
    refused(small, DocumentTooLargeError)


def test_overlapping_members_are_refused(small: bytes) -> None:
    """Two directory entries sharing one member's data: the kernel of a non-recursive
    zip bomb (Fifield 2019)."""
    data = small
    end = data.rindex(b"PK\x05\x06")
    directory_size, directory_offset = struct.unpack_from("<LL", data, end + 12)
    entries = data[directory_offset : directory_offset + directory_size]
    first = entries.index(b"PK\x01\x02", entries.index(b"chapter1.xhtml") - 60)
    length = struct.unpack_from("<H", entries, first + 28)[0]
    extra, comment = struct.unpack_from("<HH", entries, first + 30)
    entry = bytearray(entries[first : first + 46 + length + extra + comment])
    entry[46 : 46 + length] = b"OEBPS/chapter9.xhtml"[:length].ljust(length, b"x")
    count = struct.unpack_from("<H", data, end + 10)[0]
    tail = bytearray(data[end:])
    struct.pack_into("<HHL", tail, 8, count + 1, count + 1, directory_size + len(entry))
    bomb = data[:directory_offset] + entries + bytes(entry) + bytes(tail)
    refused(bomb, DocumentTooLargeError)


def _no_zipfile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building a ZipFile fail the test: the refusal must come before it."""
    from watermark.document.epub import archive

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("zipfile parsed a directory that should have been refused")

    monkeypatch.setattr(archive.zipfile, "ZipFile", refuse)


def test_too_many_members_in_the_end_record_are_refused_before_zipfile(
        small: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    end = small.rindex(b"PK\x05\x06")
    claim = limits.MAX_MEMBERS + 1
    bomb = bytearray(small)
    struct.pack_into("<HH", bomb, end + 8, claim, claim)
    _no_zipfile(monkeypatch)
    with pytest.raises(DocumentTooLargeError, match=str(claim)):
        check_epub(bytes(bomb))


def test_zip64_end_record_without_its_locator_is_refused(
        small: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    end = small.rindex(b"PK\x05\x06")
    bomb = bytearray(small)
    struct.pack_into("<HH", bomb, end + 8, 0xFFFF, 0xFFFF)
    _no_zipfile(monkeypatch)
    with pytest.raises(DocumentTooLargeError):
        check_epub(bytes(bomb))


def test_more_entries_than_the_end_record_states_are_counted(
        small: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # zipfile reads the directory by its size, not the count: a lying count is caught by
    # counting the entries themselves
    members = zipfile.ZipFile(io.BytesIO(small)).infolist()
    monkeypatch.setattr(limits, "MAX_MEMBERS", len(members) - 1)
    lying = bytearray(small)
    end = small.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", lying, end + 8, 1, 1)
    _no_zipfile(monkeypatch)
    with pytest.raises(DocumentTooLargeError, match=f"more than {len(members) - 1}"):
        check_epub(bytes(lying))


def test_a_local_extra_field_that_runs_into_the_next_member_is_an_overlap(
        small: bytes) -> None:
    # the first member (mimetype, stored) with a local extra field claimed long enough
    # to reach the second member's header: its name and data alone do not
    infos = sorted(zipfile.ZipFile(io.BytesIO(small)).infolist(),
                   key=lambda info: info.header_offset)
    first, second = infos[0], infos[1]
    assert small[first.header_offset : first.header_offset + 4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack_from("<HH", small, first.header_offset + 26)
    body = first.header_offset + 30 + name_length + extra_length + first.compress_size
    assert body <= second.header_offset  # the master is fine
    reach = second.header_offset - body + 1  # one byte more of extra field: overlap
    data = bytearray(small)
    struct.pack_into("<H", data, first.header_offset + 28, extra_length + reach)
    with pytest.raises(DocumentTooLargeError, match="overlap"):
        check_epub(bytes(data))


@pytest.mark.parametrize("name", ["../escape.xhtml", "/etc/passwd", "OEBPS/../../up.css",
                                  "C:/windows.css", "OEBPS\\back.css"])
def test_unsafe_member_names_are_refused(name: str, small: bytes) -> None:
    refused(rebuilt(small, add=[(name, b"body {}")]), CorruptDocumentError)


def test_zip_encryption_and_other_methods_are_refused(small: bytes) -> None:
    data = bytearray(rebuilt(small, add=[("OEBPS/x.css", b"p {}")]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        offset = archive.getinfo("OEBPS/x.css").header_offset
    central = bytes(data).rindex(b"OEBPS/x.css") - 46
    for position in (offset + 6, central + 8):  # general purpose flags: encrypted
        data[position] |= 1
    refused(bytes(data), UnsupportedDocumentError)


# -- odd books that are still marked ---------------------------------------------------

def test_a_book_of_images_only(small: bytes) -> None:
    spec = small_spec(chapters=[eb.Chapter("", [], "chelsea.jpg")],
                      images={"chelsea.jpg": eb.photo_bytes("chelsea", "JPEG")})
    data = eb.build(spec)
    assert check_epub(data).images == 1
    copy = embed_epub_bytes(data, KEY, PAYLOAD)
    result = extract_epub_bytes(eb.strip_identifier(copy), KEY)
    assert result.payload == PAYLOAD
    assert result.evidence == ("images",)


def test_a_tiny_book_carries_its_identifier_only() -> None:
    data = eb.build(small_spec(chapters=[eb.Chapter("One", ["Call me Ishmael."])]))
    copy = embed_epub_bytes(data, KEY, PAYLOAD)
    result = extract_epub_bytes(copy, KEY)
    assert result.payload == PAYLOAD
    assert result.evidence == ("identifier",)
    assert not extract_epub_bytes(eb.strip_identifier(copy), KEY).found


def test_bad_arguments(small: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        embed_epub_bytes(small, b"short", PAYLOAD)
    with pytest.raises(InvalidPayloadError):
        embed_epub_bytes(small, KEY, 2**64)
    with pytest.raises(InvalidKeyError):
        extract_epub_bytes(small, b"short")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_damage_is_refused_or_gives_a_valid_copy(small: bytes, data: st.DataObject) -> None:
    damaged = bytearray(small)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    try:
        copy = embed_epub_bytes(bytes(damaged), KEY, PAYLOAD)
    except UnsupportedDocumentError:
        return
    assert extract_epub_bytes(copy, KEY).payload == PAYLOAD
    assert zlib.crc32(copy) == zlib.crc32(embed_epub_bytes(bytes(damaged), KEY, PAYLOAD))


def test_a_copy_marked_under_the_same_key_is_not_marked_again(small: bytes) -> None:
    copy = embed_epub_bytes(small, KEY, PAYLOAD)
    with pytest.raises(EmbedCheckError):
        embed_epub_bytes(copy, KEY, PAYLOAD + 1)
