"""The units the text mark is carried by, and the coded symbol each one carries.

Line shifting and word shifting after Brassil, Low, Maxemchuk and O'Gorman (1995): on each
page, the eligible lines (`layout.MIN_LINE_CHARS` visible characters or more) alternate
control, marked, control, ...; a marked line moves up or down by `LINE_SHIFT` points, so a
reader without the master sees it against the two unmoved lines around it. On every
eligible line, every word but the first and the last moves left or right by `WORD_SHIFT`
points (the first and last stay, as controls: in justified text they sit on the margins);
a reader without the master sees a word's move in the difference of the gaps before and
after it, which its neighbours' moves disturb by half their own (`textmark` takes that
back out once a first decode has estimated them). Marking every inner word, rather than
every other one as in the 1995 paper, doubles the evidence per page.

Each marked unit carries one of the 282 coded symbols times a keyed chip sign. Which
symbol is drawn from a keyed hash of the line's own text and the unit's place in the line:
it does not depend on the page number (so any 2 pages of a copy carry the same code and
their evidence adds up) nor on the lines before (so a line read differently does not shift
the assignment of the rest of the page).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Final

from watermark.document.pdf.layout import MIN_LINE_CHARS, Line, PageLayout
from watermark.payload import CODED_BITS

#: vertical move of a marked line, points
LINE_SHIFT: Final = 0.4
#: horizontal move of a marked word, points
WORD_SHIFT: Final = 0.4
_LABEL: Final = b"peermark.document.pdf.v1.unit"


@dataclass(frozen=True)
class Unit:
    """One marked line (`word` None) or word of the page, and what it carries."""

    line: int  # index into PageLayout.lines
    word: int | None  # index into the line's words
    symbol: int
    chip: int
    previous: int | None  # the control unit before it (line or word index), if any
    following: int | None  # the control unit after it


def _draws(key: bytes, text: str, count: int) -> list[tuple[int, int]]:
    digest = hmac.new(key, _LABEL + unicodedata.normalize("NFC", text).encode(),
                      hashlib.sha256).digest()
    draws: list[tuple[int, int]] = []
    block = 0
    while len(draws) < count:
        stream = hashlib.sha256(digest + block.to_bytes(4, "big")).digest()
        for offset in range(0, len(stream) - 3, 4):
            value = int.from_bytes(stream[offset: offset + 4], "big")
            draws.append(((value >> 1) % CODED_BITS, 1 if value & 1 else -1))
        block += 1
    return draws[:count]


def page_units(layout: PageLayout, key: bytes) -> list[Unit]:
    """The marked units of a page, in text order."""
    eligible = [index for index, line in enumerate(layout.lines)
                if len(line.chars) >= MIN_LINE_CHARS]
    units: list[Unit] = []
    for rank, line_index in enumerate(eligible):
        line: Line = layout.lines[line_index]
        words = len(line.words)
        draws = _draws(key, layout.line_text(line), words + 1)
        if rank % 2 == 1:
            previous = eligible[rank - 1]
            following = eligible[rank + 1] if rank + 1 < len(eligible) else None
            symbol, chip = draws[0]
            units.append(Unit(line_index, None, symbol, chip, previous, following))
        for word in range(1, words - 1):
            symbol, chip = draws[word + 1]
            units.append(Unit(line_index, word, symbol, chip, word - 1, word + 1))
    return units
