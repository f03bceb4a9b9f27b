"""Marking an EPUB and reading a suspect one: identifier, text and images together.

`embed_epub_bytes` writes the payload three ways into one copy: a keyed
``dc:identifier`` in the package metadata (`watermark.document.identifier`), the keyed
zero-width-space text mark in every content document of the spine (`text`), and the image
mark in every PNG, JPEG and WebP the manifest lists (`watermark.codec`). Nothing else
changes: the book's own unique identifier, the member names, their order and timestamps
stay the master's. Before it returns, the copy is opened again and its identifier and
text (where the book has text to carry one) must read back the payload, or
`EmbedCheckError` is raised instead of handing over a damaged copy.

`extract_epub_bytes` reads each carrier on its own, so stripping one leaves the others.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, replace
from typing import Final

from lxml import etree

from watermark.codec import embed_bytes, extract_bytes
from watermark.document.epub import limits, text
from watermark.document.epub.archive import Member, read_archive, write_archive
from watermark.document.epub.package import (
    DC_NS,
    OPF_NS,
    Book,
    ElementTree,
    open_book,
    parse_xml,
    serialise,
)
from watermark.document.identifier import copy_identifier, find_identifiers, read_identifier
from watermark.errors import (
    CorruptDocumentError,
    EmbedCheckError,
    UnsupportedImageError,
    WatermarkError,
)
from watermark.payload import Decoded, codeword, decode, validate_key, validate_payload
from watermark.result import ExtractResult

IDENTIFIER_ID: Final = "peermark-copy"
_DOCUMENT_SUFFIXES: Final = (".xhtml", ".html", ".htm", ".xml")
_IMAGE_SUFFIXES: Final = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _add_identifier(book: Book, token: str) -> bytes:
    package = book.opf.getroot()
    metadata = package.find(f"{{{OPF_NS}}}metadata")
    if metadata is None:  # open_book has checked it exists
        raise CorruptDocumentError("the package document has no metadata")
    taken = {element.get("id") for element in package.iter() if isinstance(element.tag, str)}
    name, number = IDENTIFIER_ID, 2
    while name in taken:
        name, number = f"{IDENTIFIER_ID}-{number}", number + 1
    last = metadata[-1] if len(metadata) else None
    element = etree.SubElement(metadata, f"{{{DC_NS}}}identifier")
    element.set("id", name)
    element.text = token
    if last is not None:
        element.tail = last.tail
        last.tail = metadata.text
    return serialise(book.opf, book.data(book.opf_path))


def _documents(book: Book) -> list[tuple[str, ElementTree]]:
    return [(name, parse_xml(book.data(name), name)) for name in book.documents]


def _used_ranks(trees: list[ElementTree], hasher: text.Hasher
                ) -> tuple[int, list[tuple[text.Segments, list[text.Candidate]]]]:
    found = []
    ranks = []
    for tree in trees:
        segments = text.Segments(tree)
        candidates = text.candidates(segments, hasher)
        found.append((segments, candidates))
        ranks += [c.rank for c in candidates if not (c.before or c.after)]
    return text.threshold(ranks), found


def embed_epub_bytes(data: bytes, key: bytes, payload: int) -> bytes:
    """A copy of the EPUB `data` carrying `payload` under `key` (see the module docstring).

    Raises what `check_epub` raises for books it will not mark, `InvalidKeyError` or
    `InvalidPayloadError` for bad arguments, `EmbedCheckError` if the copy does not read back.
    """
    key = validate_key(key)
    payload = validate_payload(payload)
    book = open_book(data)
    replaced: dict[str, bytes] = {}

    documents = _documents(book)
    limit, found = _used_ranks([tree for _, tree in documents], text.Hasher(key))
    symbols = codeword(key, payload)
    written = 0
    for (name, tree), (segments, candidates) in zip(documents, found, strict=True):
        count = text.embed_document(segments, candidates, limit, symbols)
        if count:
            replaced[name] = serialise(tree, book.data(name))
            written += count

    for name in book.images:
        try:
            replaced[name] = embed_bytes(book.data(name), key, payload)
        except (UnsupportedImageError, EmbedCheckError):
            continue  # too small, damaged, or no room for a mark: the copy keeps it as is

    replaced[book.opf_path] = _add_identifier(book, copy_identifier(key, payload))
    members = [replace(m, data=replaced[m.name]) if m.name in replaced else m
               for m in book.members]
    copy = write_archive(members)
    _self_check(copy, key, payload, text_expected=written > 0)
    return copy


def _self_check(copy: bytes, key: bytes, payload: int, *, text_expected: bool) -> None:
    try:
        book = open_book(copy)
        identifiers = _read_identifiers(_members(book.members), key)
        reading = _read_text([tree for _, tree in _documents(book)], key, None)
    except WatermarkError as error:
        raise EmbedCheckError(f"the marked EPUB does not open again: {error}") from error
    if identifiers != [payload]:
        raise EmbedCheckError("the marked EPUB's identifier does not read back")
    if text_expected and (reading is None or reading.payload != payload):
        raise EmbedCheckError("the marked EPUB's text mark does not read back")


def _members(members: list[Member]) -> dict[str, bytes]:
    return {member.name: member.data for member in members if not member.is_dir}


def _read_identifiers(members: dict[str, bytes], key: bytes) -> list[int]:
    """Payloads of the keyed tokens in the package documents (and any other XML member)."""
    found = []
    for name, data in members.items():
        if name.lower().endswith((".opf", ".xml")):
            for token in find_identifiers(data.decode("utf-8", "replace")):
                value = read_identifier(token, key)
                if value is not None:
                    found.append(value)
    return found


def _read_text(trees: list[ElementTree], key: bytes,
               allowed: set[int] | None) -> Decoded | None:
    """Decode the text mark (one keyed-check attempt), or None if too few carriers voted."""
    hasher = text.Hasher(key)
    soft = None
    count = 0
    for tree in trees:
        more, voted = text.votes(text.candidates(text.Segments(tree), hasher), allowed)
        soft = more if soft is None else soft + more
        count += voted
    if soft is None or count < text.MIN_VOTES:
        return None
    return decode(key, soft)


@dataclass
class _Suspect:
    members: dict[str, bytes]
    documents: list[str]
    images: list[str]


def _suspect(data: bytes) -> _Suspect:
    """The parts of a suspect copy: by its package document if it still has a usable one,
    else every member that looks like a content document or an image."""
    members_list = read_archive(data)
    members = _members(members_list)
    try:
        book = open_book(data)
    except CorruptDocumentError:
        book = None
    if book is not None:
        documents = list(book.documents)
        images = list(book.images)
    else:
        documents = [n for n in members if n.lower().endswith(_DOCUMENT_SUFFIXES)
                     and not n.startswith("META-INF/")]
        images = []
    seen = set(images)
    images += [n for n in members if n.lower().endswith(_IMAGE_SUFFIXES) and n not in seen]
    return _Suspect(members, documents, images)


def _master_image(name: str, master: dict[str, bytes]) -> bytes | None:
    if name in master:
        return master[name]
    base = posixpath.basename(name)
    matches = [n for n in master if posixpath.basename(n) == base]
    return master[matches[0]] if len(matches) == 1 else None


def extract_epub_bytes(data: bytes, key: bytes, reference: bytes | None = None) -> ExtractResult:
    """Read the mark of a suspect EPUB under `key`: blind, or informed by the master's
    bytes (`reference`), which restricts the text read to the positions the embedder used
    and reads each image against the master's.

    `evidence` names the carriers that gave the reported payload, among ``"identifier"``,
    ``"text"`` and ``"images"``. If carriers disagree (a copy mixed from two buyers'
    copies), the payload most carriers name is reported, the text's first on a tie.
    """
    key = validate_key(key)
    suspect = _suspect(data)
    master: Book | None = open_book(reference) if reference is not None else None

    named: dict[str, list[int]] = {"identifier": _read_identifiers(suspect.members, key)}

    trees = []
    for name in suspect.documents:
        try:
            trees.append(parse_xml(suspect.members[name], name, recover=True))
        except CorruptDocumentError:
            continue
    allowed = None
    if master is not None:
        limit, found = _used_ranks([tree for _, tree in _documents(master)],
                                   text.Hasher(key))
        allowed = {c.rank for _, candidates in found for c in candidates
                   if c.rank <= limit and not (c.before or c.after)}
    text_read = _read_text(trees, key, allowed)
    named["text"] = [text_read.payload] if text_read and text_read.payload is not None else []

    master_members = _members(master.members) if master is not None else {}
    image_reads: list[ExtractResult] = []
    for name in suspect.images[: limits.MAX_IMAGES_READ]:
        original = _master_image(name, master_members) if master is not None else None
        try:
            image_reads.append(extract_bytes(suspect.members[name], key, reference=original))
        except (UnsupportedImageError, EmbedCheckError):
            continue
    named["images"] = [r.payload for r in image_reads if r.found and r.payload is not None]

    votes: Counter[int] = Counter()
    for carrier in ("text", "images", "identifier"):
        votes.update(set(named[carrier]))
    informed = master is not None
    if not votes:
        bit_errors, score = (text_read.bit_errors, text_read.score) if text_read else (0, 0.0)
        return ExtractResult(found=False, payload=None, bit_errors=bit_errors, score=score,
                             informed=informed)
    best = max(votes.values())
    payload = next(p for carrier in ("text", "images", "identifier") for p in named[carrier]
                   if votes[p] == best)
    evidence = tuple(c for c in ("identifier", "text", "images") if payload in named[c])
    if text_read is not None and text_read.payload == payload:
        bit_errors, score = text_read.bit_errors, text_read.score
    else:
        agreeing = [r for r in image_reads if r.payload == payload]
        if agreeing:
            bit_errors, score = agreeing[0].bit_errors, agreeing[0].score
        else:
            bit_errors, score = 0, 1.0
    return ExtractResult(found=True, payload=payload, bit_errors=bit_errors, score=score,
                         informed=informed, evidence=evidence)
