"""The text mark: which shift each glyph gets, and the three ways of reading the shifts.

- `page_shifts` turns a page's units (`units.page_units`) and the codeword into a shift
  per text operator, for `content.shift_page`.
- `blind_soft` reads a suspect alone: a marked line against the spacing of the two
  control lines around it, a marked word against the gaps to the two words around it.
  Text set with a regular leading and equal word spaces on a line shows the shift
  directly; irregular places (a heading, a sentence's end) are gated out or clipped.
- `informed_soft` compares each character's position in the suspect with the master's
  (exact after any re-save): the line's or word's move against its controls' move.
- `raster_soft` does the same on pictures of the pages: the master rendered at the
  suspect's resolution, each unit's ink profile (rows for a line, columns for a word)
  correlated with the suspect's to sub-pixel precision.

Every reader returns soft values summed per coded symbol (plus how many units gave one).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from watermark.document.pdf.content import Shifts
from watermark.document.pdf.layout import MIN_LINE_CHARS, PageLayout
from watermark.document.pdf.units import LINE_SHIFT, WORD_SHIFT, Unit, page_units
from watermark.payload import CODED_BITS

_CLIP = 2.0
#: blind reading: neighbouring gaps that differ by more than this (points) are not regular
_REGULAR = 1.6
_STOPS = frozenset(".!?:;")
#: pixels either way the raster reader searches for a unit's move
_REACH = 3


def page_shifts(layout: PageLayout, units: Sequence[Unit], code: NDArray[np.float64]
                ) -> dict[int, Shifts]:
    """Text-operator rank -> the shifts of its glyphs."""
    horizontal: dict[int, float] = {}
    vertical: dict[int, float] = {}
    for unit in units:
        sign = float(unit.chip * code[unit.symbol])
        line = layout.lines[unit.line]
        if unit.word is None:
            for index in line.chars:
                vertical[index] = sign * LINE_SHIFT
        else:
            for index in line.words[unit.word].chars:
                horizontal[index] = sign * WORD_SHIFT
    per_object: dict[int, dict[int, tuple[float, float]]] = {}
    for index, char in enumerate(layout.chars):
        if char.obj is not None and char.rank >= 0:
            per_object.setdefault(char.obj, {})[char.rank] = (
                horizontal.get(index, 0.0), vertical.get(index, 0.0))
    shifts: dict[int, Shifts] = {}
    for obj, ranks in per_object.items():
        length = max(ranks) + 1
        moves: list[float] = []
        current = 0.0
        for rank in range(length):
            if rank in ranks:
                current = ranks[rank][0]
            moves.append(current)
        lifts = {value[1] for value in ranks.values()}
        lift = lifts.pop() if len(lifts) == 1 else 0.0
        if any(moves) or lift:
            shifts[obj] = Shifts(tuple(moves), lift)
    return shifts


def _accumulate(soft: NDArray[np.float64], unit: Unit, value: float) -> None:
    soft[unit.symbol] += unit.chip * float(np.clip(value, -_CLIP, _CLIP))


def blind_soft(layouts: Sequence[PageLayout], key: bytes,
               estimate: NDArray[np.float64] | None = None
               ) -> tuple[NDArray[np.float64], int]:
    """Soft values of a suspect read alone. With `estimate` (a codeword a first decode
    came up with), each word's reading gets back what its marked neighbours' estimated
    moves took from it."""
    soft = np.zeros(CODED_BITS)
    used = 0
    for layout in layouts:
        units = page_units(layout, key)
        moves: dict[tuple[int, int], float] = {}
        if estimate is not None:
            moves = {(unit.line, unit.word): unit.chip * float(estimate[unit.symbol])
                     for unit in units if unit.word is not None}
        for unit in units:
            value = _blind_unit(layout, unit)
            if value is None:
                continue
            if unit.word is not None and moves:
                value += 0.5 * (moves.get((unit.line, unit.word - 1), 0.0)
                                + moves.get((unit.line, unit.word + 1), 0.0))
            _accumulate(soft, unit, value)
            used += 1
    return soft, used


def _baseline(layout: PageLayout, line: int) -> float:
    return float(np.median([layout.chars[i].y for i in layout.lines[line].chars]))


def _blind_unit(layout: PageLayout, unit: Unit) -> float | None:
    if unit.previous is None or unit.following is None:
        return None
    line = layout.lines[unit.line]
    if unit.word is None:
        above = _baseline(layout, unit.previous)
        here = _baseline(layout, unit.line)
        below = _baseline(layout, unit.following)
        size = max(layout.chars[i].size for i in line.chars)
        gap_above, gap_below = above - here, here - below
        if not (0 < gap_above < 3 * size and 0 < gap_below < 3 * size):
            return None
        if abs(gap_above - gap_below) > _REGULAR:
            return None
        return (gap_below - gap_above) / (2 * LINE_SHIFT)
    words = line.words
    before, word, after = words[unit.previous], words[unit.word], words[unit.following]
    chars = layout.chars
    gap_before = chars[word.chars[0]].x - chars[before.chars[-1]].right
    gap_after = chars[after.chars[0]].x - chars[word.chars[-1]].right
    if chars[before.chars[-1]].text in _STOPS or chars[word.chars[-1]].text in _STOPS:
        return None  # a sentence's end may be followed by a wider space (TeX does so)
    size = chars[word.chars[0]].size
    if not (0 < gap_before < 2 * size and 0 < gap_after < 2 * size):
        return None
    if abs(gap_before - gap_after) > _REGULAR + 2 * WORD_SHIFT:
        return None
    return (gap_before - gap_after) / (2 * WORD_SHIFT)


def match_chars(master: PageLayout, suspect: PageLayout) -> dict[int, int]:
    """Master character index -> suspect character index, by the text they spell."""
    if master.text == suspect.text:
        return {index: index for index in range(len(master.chars))}
    matcher = difflib.SequenceMatcher(None, master.text, suspect.text, autojunk=False)
    pairs: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            pairs[block.a + offset] = block.b + offset
    return pairs


def informed_soft(pairs: Sequence[tuple[PageLayout, PageLayout]], key: bytes
                  ) -> tuple[NDArray[np.float64], int]:
    """Soft values from (master page, suspect page) pairs of text pages."""
    soft = np.zeros(CODED_BITS)
    used = 0
    for master, suspect in pairs:
        matched = match_chars(master, suspect)
        if not matched:
            continue
        dx = {i: suspect.chars[j].x - master.chars[i].x for i, j in matched.items()}
        dy = {i: suspect.chars[j].y - master.chars[i].y for i, j in matched.items()}
        units = page_units(master, key)
        marked_lines = {unit.line for unit in units if unit.word is None}
        control_dy = [dy[i] for n, line in enumerate(master.lines) if n not in marked_lines
                      for i in line.chars if i in dy]
        if not control_dy:
            continue
        reference_dy = float(np.median(control_dy))
        for unit in units:
            line = master.lines[unit.line]
            if unit.word is None:
                moved = [dy[i] for i in line.chars if i in dy]
                if len(moved) < 2:
                    continue
                value = (float(np.median(moved)) - reference_dy) / LINE_SHIFT
            else:
                moved = [dx[i] for i in line.words[unit.word].chars if i in dx]
                controls = [dx[i] for word in (line.words[0], line.words[-1])
                            for i in word.chars if i in dx]
                if not moved or not controls:
                    continue
                value = (float(np.median(moved)) - float(np.median(controls))) / WORD_SHIFT
            _accumulate(soft, unit, value)
            used += 1
    return soft, used


def _profile_shift(master: NDArray[np.float64], suspect: NDArray[np.float64],
                   reach: int) -> float | None:
    """The sub-pixel lag (suspect against master) that best aligns two ink profiles."""
    if master.size <= 2 * reach + 2 or float(np.ptp(master)) < 1e-6:
        return None
    m = master - master.mean()
    s = suspect - suspect.mean()
    core = m[reach:-reach]
    scores = np.array([float(core @ s[reach + lag: s.size - reach + lag])
                       for lag in range(-reach, reach + 1)])
    best = int(np.argmax(scores))
    if best in (0, scores.size - 1):
        return None
    left, centre, right = scores[best - 1], scores[best], scores[best + 1]
    denominator = left - 2 * centre + right
    offset = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
    return best - reach + float(offset)


class _Pictures:
    """One page's master layout and the two ink pictures, measured unit by unit."""

    def __init__(self, layout: PageLayout, master: NDArray[np.float32],
                 suspect: NDArray[np.float32], dpi: float) -> None:
        self.layout, self.master, self.suspect = layout, master, suspect
        self.per_point = dpi / 72.0

    def box(self, indices: Sequence[int], pad: int) -> tuple[int, int, int, int]:
        chars = [self.layout.chars[i] for i in indices]
        per_point = self.per_point
        left = min(c.x for c in chars) * per_point - pad
        right = max(c.right for c in chars) * per_point + pad
        top = (self.layout.height - max(c.top for c in chars)) * per_point - pad
        bottom = (self.layout.height - min(c.bottom for c in chars)) * per_point + pad
        height, width = self.master.shape
        return (max(int(np.floor(top)), 0), min(int(np.ceil(bottom)), height),
                max(int(np.floor(left)), 0), min(int(np.ceil(right)), width))

    def vertical(self, indices: Sequence[int]) -> float | None:
        """How far up (points) the suspect has these characters, against the master."""
        top, bottom, left, right = self.box(indices, _REACH + 1)
        if bottom - top < 2 * _REACH + 4 or right <= left:
            return None
        master = self.master[top:bottom, left:right].sum(axis=1, dtype=np.float64)
        suspect = self.suspect[top:bottom, left:right].sum(axis=1, dtype=np.float64)
        lag = _profile_shift(master, suspect, _REACH)
        return None if lag is None else -lag / self.per_point

    def horizontal(self, indices: Sequence[int]) -> float | None:
        """How far right (points) the suspect has these characters."""
        top, bottom, left, right = self.box(indices, _REACH + 1)
        if right - left < 2 * _REACH + 4 or bottom <= top:
            return None
        master = self.master[top:bottom, left:right].sum(axis=0, dtype=np.float64)
        suspect = self.suspect[top:bottom, left:right].sum(axis=0, dtype=np.float64)
        lag = _profile_shift(master, suspect, _REACH)
        return None if lag is None else lag / self.per_point


def raster_soft(pairs: Sequence[tuple[PageLayout, NDArray[np.float32], NDArray[np.float32]]],
                key: bytes, dpi: float) -> tuple[NDArray[np.float64], int]:
    """Soft values from (master layout, master ink, suspect ink) at `dpi`; ink is 0..1 per
    pixel (1 black), both pictures of the same page at the same size."""
    soft = np.zeros(CODED_BITS)
    used = 0
    for layout, master, suspect in pairs:
        page = _Pictures(layout, master, suspect, dpi)
        units = page_units(layout, key)
        marked_lines = {unit.line for unit in units if unit.word is None}
        control_moves = [move for n, line in enumerate(layout.lines)
                         if n not in marked_lines and len(line.chars) >= MIN_LINE_CHARS
                         for move in [page.vertical(line.chars)] if move is not None]
        reference = float(np.median(control_moves)) if control_moves else 0.0
        word_reference: dict[int, float] = {}
        for unit in units:
            line = layout.lines[unit.line]
            if unit.word is None:
                move = page.vertical(line.chars)
                if move is None:
                    continue
                value = (move - reference) / LINE_SHIFT
            else:
                if unit.line not in word_reference:
                    moves = [m for word in (line.words[0], line.words[-1])
                             for m in [page.horizontal(word.chars)] if m is not None]
                    word_reference[unit.line] = float(np.median(moves)) if moves else 0.0
                move = page.horizontal(line.words[unit.word].chars)
                if move is None:
                    continue
                value = (move - word_reference[unit.line]) / WORD_SHIFT
            _accumulate(soft, unit, value)
            used += 1
    return soft, used
