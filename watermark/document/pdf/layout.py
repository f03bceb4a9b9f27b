"""Where the text of a page sits, as PDFium reads it: characters, words and lines.

Both the embedder (on the master) and the readers (on the master or the suspect) cut a page
the same way, so that the units a copy was marked on are found again: visible characters in
PDFium's text order, words split at spaces (real or the ones PDFium infers from gaps), lines
split at PDFium's line breaks or where the baseline moves by more than `LINE_TOLERANCE`.
Only public PDFium calls (`pypdfium2.raw`, the C API) are used.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Final

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

#: baseline change (points) that starts a new line; far above the mark's shifts
LINE_TOLERANCE: Final = 1.5
#: characters a line needs to take part in the mark
MIN_LINE_CHARS: Final = 4


@dataclass(frozen=True)
class Char:
    """One visible character: origin (x, y) on the baseline, right edge of its advance,
    bottom and top of its loose box, the page's text object it came from and its rank
    among that object's characters (None when it is not in the page's own content)."""

    text: str
    x: float
    y: float
    right: float
    bottom: float
    top: float
    size: float
    obj: int | None
    rank: int


@dataclass(frozen=True)
class Word:
    chars: tuple[int, ...]


@dataclass(frozen=True)
class Line:
    words: tuple[Word, ...]

    @property
    def chars(self) -> tuple[int, ...]:
        return tuple(index for word in self.words for index in word.chars)


@dataclass(frozen=True)
class PageLayout:
    width: float
    height: float
    chars: tuple[Char, ...]
    lines: tuple[Line, ...]
    text_objects: int

    def line_text(self, line: Line) -> str:
        return "".join(self.chars[index].text for index in line.chars)

    @property
    def text(self) -> str:
        return "".join(char.text for char in self.chars)

    def eligible(self) -> list[Line]:
        return [line for line in self.lines if len(line.chars) >= MIN_LINE_CHARS]


def _object_ranks(page: pdfium.PdfPage) -> dict[int, int]:
    """Address of each top-level text object -> its rank among them (content order)."""
    ranks: dict[int, int] = {}
    for index in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, index)
        if pdfium_c.FPDFPageObj_GetType(obj) == pdfium_c.FPDF_PAGEOBJ_TEXT:
            address = ctypes.cast(obj, ctypes.c_void_p).value
            if address is not None:
                ranks[address] = len(ranks)
    return ranks


def read_layout(page: pdfium.PdfPage, *, objects: bool = False) -> PageLayout:
    """The page's visible characters grouped into words and lines; with `objects`, which
    text object of the page each came from (the embedder needs it, a reader does not)."""
    ranks = _object_ranks(page) if objects else {}
    textpage = page.get_textpage()
    try:
        chars: list[Char] = []
        lines: list[Line] = []
        words: list[Word] = []
        word: list[int] = []
        line_y: float | None = None
        per_object: dict[int, int] = {}
        x, y = ctypes.c_double(), ctypes.c_double()

        def end_word() -> None:
            nonlocal word
            if word:
                words.append(Word(tuple(word)))
                word = []

        def end_line() -> None:
            nonlocal words, line_y
            end_word()
            if words:
                lines.append(Line(tuple(words)))
                words = []
            line_y = None

        for index in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
            generated = bool(pdfium_c.FPDFText_IsGenerated(textpage.raw, index))
            obj = None
            if objects:
                handle = pdfium_c.FPDFText_GetTextObject(textpage.raw, index)
                address = ctypes.cast(handle, ctypes.c_void_p).value if handle else None
                obj = ranks.get(address) if address is not None else None
            rank = -1
            if obj is not None and not generated:
                rank = per_object.get(obj, 0)
                per_object[obj] = rank + 1
            text = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if generated and text in "\r\n":
                end_line()
                continue
            if generated or text.isspace() or code == 0:
                end_word()
                continue
            if abs(pdfium_c.FPDFText_GetCharAngle(textpage.raw, index)) > 1e-3:
                end_word()
                continue
            pdfium_c.FPDFText_GetCharOrigin(textpage.raw, index, x, y)
            _left, bottom, right, top = textpage.get_charbox(index, loose=True)
            if line_y is not None and abs(y.value - line_y) > LINE_TOLERANCE:
                end_line()
            if line_y is None:
                line_y = y.value
            size = float(pdfium_c.FPDFText_GetFontSize(textpage.raw, index))
            word.append(len(chars))
            chars.append(Char(text, x.value, y.value, max(right, x.value), bottom, top, size,
                              obj, rank))
        end_line()
    finally:
        textpage.close()
    width, height = page.get_size()
    return PageLayout(width, height, tuple(chars), tuple(lines), len(ranks) if objects else -1)


def object_char_counts(page: pdfium.PdfPage) -> dict[int, int]:
    """Non-generated characters of each top-level text object, spaces included."""
    ranks = _object_ranks(page)
    counts: dict[int, int] = {}
    textpage = page.get_textpage()
    try:
        for index in range(textpage.count_chars()):
            if pdfium_c.FPDFText_IsGenerated(textpage.raw, index):
                continue
            handle = pdfium_c.FPDFText_GetTextObject(textpage.raw, index)
            address = ctypes.cast(handle, ctypes.c_void_p).value if handle else None
            obj = ranks.get(address) if address is not None else None
            if obj is not None:
                counts[obj] = counts.get(obj, 0) + 1
    finally:
        textpage.close()
    return counts
