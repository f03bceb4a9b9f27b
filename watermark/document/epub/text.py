"""The keyed text mark: a zero-width space just before or just after chosen word spaces.

Candidates are the runs of XML whitespace (nearly always one U+0020) in the body text of
content documents that sit between a word (or a word followed by ``.,;:!?``) and a word,
inside one text node, outside ``script``, ``style``, ``pre``, ``code`` and the like,
outside SVG and MathML, never in attributes, never next to a no-break space. Each
candidate is named by its context, the two words before and the two after it
(case-folded), hashed under a key derived from the work's key: the hash says which of the
282 coded symbols the position carries, a keyed sign, and a rank. The embedder uses the
candidates of lowest rank (an eighth of them, at least 8 per symbol on average, or all
there are; none in a book of fewer than 564) and writes each symbol as *where* one
U+200B goes: before the space for +1, after it for -1 (times the keyed sign). Every used
position holds exactly one U+200B either way, so a blind reader needs no position list:
it finds each U+200B next to a candidate space, recomputes the context's hash and votes.

Because positions are named by their content, not their place, any part of the book
(one chapter, a quoted page that kept its zero-width spaces) still votes, and
repackaging, another member order, re-serialising or rewrapping the XHTML and NFC/NFKC
normalisation change nothing. U+200B is zero-width, is not whitespace to XML or CSS (no
collapsing, no justification stretch), and next to a space adds no break opportunity and
removes none (UAX #14: no break before ZW; the break after "ZW SP*" is where the space's
was); next to a no-break space it would add one, which is why those are never used.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.entities import name2codepoint
from typing import Final

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from watermark.document.epub.package import XHTML_NS, Element, ElementTree
from watermark.payload import CODED_BITS

CARRIER: Final = "\u200b"
#: share of the candidate spaces the mark uses, and the least it uses (per symbol: 8)
DENSITY: Final = 1 / 8
MIN_POSITIONS: Final = 8 * CODED_BITS
#: a book with fewer candidate spaces than this (about 600 words) gets no text mark: too
#: few votes to decode, so the zero-width spaces would be there for nothing
MIN_TEXT_POSITIONS: Final = 2 * CODED_BITS
#: fewer votes than this and the text is not decoded at all (an unmarked book has none)
MIN_VOTES: Final = 24
CONTEXT_WORDS: Final = 2
_LABEL: Final = b"peermark.document.v1.epub-text"
_PREVIOUS_PUNCTUATION: Final = frozenset(".,;:!?")
#: elements whose content is not running text a reader sees as prose
SKIPPED: Final = frozenset({
    "head", "title", "script", "style", "pre", "code", "kbd", "samp", "var", "tt",
    "textarea", "noscript", "template", "rt", "rp", "select", "option", "button", "input",
    "svg", "math"})
_WORD: Final = re.compile(r"\w+")
#: XML whitespace: what a renderer collapses into one space (U+00A0 is not in it)
_WHITESPACE: Final = re.compile(r"[ \t\n\r]+")


@dataclass(frozen=True)
class Candidate:
    segment: int
    start: int  # the whitespace run in the segment's text, as stored
    end: int
    before: bool  # a carrier stands just before the space
    after: bool  # ... just after it
    rank: int
    symbol: int
    sign: int


def _local(tag: object) -> str | None:
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return name if namespace == XHTML_NS else "svg"  # other vocabularies: skipped
    return tag


def _body(tree: ElementTree) -> Element:
    root = tree.getroot()
    for element in root.iter():
        if _local(element.tag) == "body":
            return element
    return root


class Segments:
    """The text nodes of a document's body that hold running text, in order: each is an
    element's ``text`` or a node's ``tail``. `order` also places the characters of entity
    references lxml keeps unexpanded (``&nbsp;`` in an EPUB 2 document), so the words
    around them are the words a tool that expands them would see."""

    def __init__(self, tree: ElementTree) -> None:
        self.nodes: list[tuple[Element, bool]] = []  # (node, is_tail)
        self.order: list[int | str] = []  # an index into nodes, or an entity's text
        self._walk(_body(tree))

    def _add(self, node: Element, *, is_tail: bool) -> None:
        self.order.append(len(self.nodes))
        self.nodes.append((node, is_tail))

    def _walk(self, element: Element) -> None:
        # recursion is bounded: libxml2 refuses nesting deeper than 256 without huge_tree
        if element.text:
            self._add(element, is_tail=False)
        for child in element:
            if child.tag is etree.Entity:
                code = name2codepoint.get(child.name.strip("&;"))
                self.order.append(chr(code) if code is not None else " ")
            else:
                local = _local(child.tag)
                if local is not None and local not in SKIPPED:
                    self._walk(child)
            if child.tail:
                self._add(child, is_tail=True)

    def text(self, index: int) -> str:
        node, is_tail = self.nodes[index]
        return (node.tail if is_tail else node.text) or ""

    def set_text(self, index: int, value: str) -> None:
        node, is_tail = self.nodes[index]
        if is_tail:
            node.tail = value
        else:
            node.text = value


class Hasher:
    """The keyed hash that names a candidate position by its context."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, _LABEL, hashlib.sha256).digest()

    def __call__(self, words: list[str]) -> tuple[int, int, int]:
        context = "\x1f".join(words).casefold().encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(context, key=self._key, digest_size=16).digest()
        rank = int.from_bytes(digest[:8], "big")
        symbol = int.from_bytes(digest[8:12], "big") % CODED_BITS
        return rank, symbol, 1 if digest[12] & 1 else -1


def _spaces(text: str) -> Iterator[tuple[int, int, bool, bool, int]]:
    """(start, end, carrier before, carrier after, start in the carrier-free text) for every
    candidate run of XML whitespace (usually one space) in one text node."""
    removed = 0
    last = 0
    length = len(text)
    for run in _WHITESPACE.finditer(text):
        start, end = run.span()
        removed += text.count(CARRIER, last, start)
        last = start
        before = start > 0 and text[start - 1] == CARRIER
        after = end < length and text[end] == CARRIER
        previous = start - 2 if before else start - 1
        following = end + 1 if after else end
        if previous >= 0 and following < length:
            left, right = text[previous], text[following]
            if (left.isalnum() or left in _PREVIOUS_PUNCTUATION) and right.isalnum():
                yield start, end, before, after, start - removed


def candidates(segments: Segments, hasher: Hasher) -> list[Candidate]:
    """Every candidate space of one document, with its context's keyed hash."""
    pieces = []
    spaces = []
    offset = 0
    for number in segments.order:
        if isinstance(number, str):
            pieces.append(number)
            offset += len(number)
            continue
        text = segments.text(number)
        for start, end, before, after, plain in _spaces(text):
            spaces.append((number, start, end, before, after, offset + plain))
        plain_text = text.replace(CARRIER, "")
        pieces.append(plain_text)
        offset += len(plain_text)
    flat = "".join(pieces)
    words = [(match.start(), match.group()) for match in _WORD.finditer(flat)]
    starts = [start for start, _ in words]
    found = []
    for number, start, end, before, after, position in spaces:
        cut = bisect.bisect_right(starts, position)
        context = ([word for _, word in words[max(cut - CONTEXT_WORDS, 0) : cut]] + ["|"]
                   + [word for _, word in words[cut : cut + CONTEXT_WORDS]])
        rank, symbol, sign = hasher(context)
        found.append(Candidate(number, start, end, before, after, rank, symbol, sign))
    return found


def threshold(ranks: list[int]) -> int:
    """The highest rank the embedder uses, given every candidate rank in the book (-1: none,
    the book is too short for a text mark)."""
    if len(ranks) < MIN_TEXT_POSITIONS:
        return -1
    ordered = sorted(ranks)
    count = min(len(ordered), max(MIN_POSITIONS, int(np.ceil(len(ordered) * DENSITY))))
    return ordered[count - 1]


def embed_document(segments: Segments, found: list[Candidate], limit: int,
                   symbols: NDArray[np.float64]) -> int:
    """Write the carriers into one document's text nodes; returns how many were written.
    Candidates next to a carrier the master already had are left alone."""
    by_segment: dict[int, list[int]] = {}
    written = 0
    for candidate in found:
        if candidate.rank > limit or candidate.before or candidate.after:
            continue
        positive = symbols[candidate.symbol] * candidate.sign > 0
        at = candidate.start if positive else candidate.end
        by_segment.setdefault(candidate.segment, []).append(at)
        written += 1
    for number, inserts in by_segment.items():
        text = segments.text(number)
        for at in sorted(inserts, reverse=True):
            text = text[:at] + CARRIER + text[at:]
        segments.set_text(number, text)
    return written


def votes(found: list[Candidate], allowed: set[int] | None = None) -> tuple[NDArray[np.float64],
                                                                            int]:
    """Soft symbols from the carriers next to candidate spaces, and how many voted.
    `allowed` (an informed read) keeps only the ranks the embedder used in the master."""
    soft = np.zeros(CODED_BITS)
    count = 0
    for candidate in found:
        if candidate.before == candidate.after:
            continue
        if allowed is not None and candidate.rank not in allowed:
            continue
        soft[candidate.symbol] += candidate.sign if candidate.before else -candidate.sign
        count += 1
    return soft, count


def visible_characters(tree: ElementTree) -> int:
    """Characters of running text in a document, whitespace and carriers not counted."""
    segments = Segments(tree)
    total = 0
    for number in range(len(segments.nodes)):
        text = segments.text(number)
        total += sum(1 for char in text if not char.isspace()) - text.count(CARRIER)
    return total
