"""Shifting lines and words in a page's content stream.

The page's own content (not form XObjects) is parsed with `pikepdf.parse_content_stream`;
a small interpreter follows the graphics state (q/Q, cm) and the text state (Tf, Tz, Ts, Tm)
only as far as needed to turn a shift in points into the operand that produces it, and
every text-showing operator (Tj, TJ, ', ") becomes a TJ:

- a word moves horizontally by a kerning number inserted before its first glyph and taken
  back after its last one (-1000 * dx / (font size * horizontal scaling * x scale)), so
  the glyphs after it stay where they were;
- a line moves vertically by the text rise (Ts) set around each of its text operators and
  restored after, which leaves the text matrix, hence every later position, untouched.

The characters PDFium reports for the n-th text object of the page are the glyphs of the
n-th text operator of the content: a page is marked only if the counts agree operator by
operator (otherwise that operator is left as it was), so a glyph is never moved by a shift
meant for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

import pikepdf

Matrix = tuple[float, float, float, float]
_IDENTITY: Final[Matrix] = (1.0, 0.0, 0.0, 1.0)
_SHOW: Final = frozenset({"Tj", "TJ", "'", '"'})


@dataclass(frozen=True)
class _State:
    ctm: Matrix = _IDENTITY
    font: str | None = None
    size: float = 0.0
    scale: float = 1.0  # Tz / 100
    rise: float = 0.0


def _multiply(first: Matrix, second: Matrix) -> Matrix:
    a, b, c, d = first
    e, f, g, h = second
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def _number(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _resources(page: pikepdf.Page) -> pikepdf.Dictionary | None:
    obj: pikepdf.Object | None = page.obj
    for _ in range(64):
        if not isinstance(obj, pikepdf.Dictionary):
            return None
        resources = obj.get("/Resources")
        if isinstance(resources, pikepdf.Dictionary):
            return resources
        obj = obj.get("/Parent")
    return None


def _bytes_per_code(fonts: pikepdf.Object | None, name: str | None) -> int | None:
    """1 for simple fonts, 2 for Type0 fonts in Identity-H, None for anything else."""
    if name is None or not isinstance(fonts, pikepdf.Dictionary):
        return None
    font = fonts.get(name)
    if not isinstance(font, pikepdf.Dictionary):
        return None
    if font.get("/Subtype") == pikepdf.Name.Type0:
        return 2 if font.get("/Encoding") == pikepdf.Name("/Identity-H") else None
    return 1


def _codes(operands: list[pikepdf.Object], operator: str, width: int) -> int:
    if operator == "TJ":
        items = list(operands[0]) if operands and isinstance(operands[0], pikepdf.Array) else []
    else:
        items = operands[-1:]
    total = 0
    for item in items:
        if isinstance(item, pikepdf.String):
            total += len(bytes(item)) // width
    return total


@dataclass(frozen=True)
class Shifts:
    """For one text operator: horizontal shift per glyph (points), and one vertical shift."""

    horizontal: tuple[float, ...]
    vertical: float


def _rebuild(items: list[pikepdf.Object], width: int, shifts: Shifts, unit: float
             ) -> pikepdf.Array:
    """The TJ array with kerning numbers moving each glyph by its horizontal shift."""
    out: list[pikepdf.Object | float] = []
    current = 0.0
    code = 0
    for item in items:
        if not isinstance(item, pikepdf.String):
            out.append(item)
            continue
        data = bytes(item)
        start = 0
        for offset in range(0, len(data) - len(data) % width, width):
            target = shifts.horizontal[code] if code < len(shifts.horizontal) else current
            if target != current:
                if offset > start:
                    out.append(pikepdf.String(data[start:offset]))
                out.append(round(-(target - current) * unit, 3))
                current = target
                start = offset
            code += 1
        if start < len(data):
            out.append(pikepdf.String(data[start:]))
    if current != 0.0:
        out.append(round(current * unit, 3))
    return pikepdf.Array(out)


def shift_page(page: pikepdf.Page, shifts: Mapping[int, Shifts],
               counts: Mapping[int, int], text_objects: int) -> tuple[bytes, int] | None:
    """The page's content with the shifts applied, and how many operators were changed.

    `shifts` maps the rank of a text operator (among those that show at least one glyph)
    to its shifts; `counts` is how many characters PDFium saw in each text object and
    `text_objects` how many text objects it saw. None if the page's content does not match
    what PDFium saw, or nothing could be shifted.
    """
    resources = _resources(page)
    fonts = resources.get("/Font") if resources is not None else None
    instructions = pikepdf.parse_content_stream(page)
    state = _State()
    stack: list[_State] = []
    text_matrix: Matrix = _IDENTITY
    out: list[pikepdf.ContentStreamInstruction | pikepdf.ContentStreamInlineImage] = []
    rank = 0
    changed = 0
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            out.append(instruction)
            continue
        operator = str(instruction.operator)
        operands = list(instruction.operands)
        if operator == "q":
            stack.append(state)
        elif operator == "Q":
            state = stack.pop() if stack else _State()
        elif operator == "cm" and len(operands) == 6:
            matrix = tuple(_number(value) for value in operands[:4])
            state = replace(state, ctm=_multiply(matrix, state.ctm))  # type: ignore[arg-type]
        elif operator == "BT":
            text_matrix = _IDENTITY
        elif operator == "Tm" and len(operands) == 6:
            text_matrix = tuple(_number(value) for value in operands[:4])  # type: ignore[assignment]
        elif operator == "Tf" and len(operands) == 2:
            state = replace(state, font=str(operands[0]), size=_number(operands[1]))
        elif operator == "Tz" and operands:
            state = replace(state, scale=_number(operands[0]) / 100.0)
        elif operator == "Ts" and operands:
            state = replace(state, rise=_number(operands[0]))
        if operator not in _SHOW:
            out.append(instruction)
            continue
        width = _bytes_per_code(fonts, state.font)
        codes = _codes(operands, operator, width or 1)
        if codes == 0:
            out.append(instruction)
            continue
        this, rank = rank, rank + 1
        wanted = shifts.get(this)
        a, b, c, d = _multiply(text_matrix, state.ctm)
        upright = a > 0 and d > 0 and abs(b) < 1e-6 * a and abs(c) < 1e-6 * d
        if (wanted is None or width is None or counts.get(this) != codes or not upright
                or state.size <= 0 or state.scale <= 0):
            out.append(instruction)
            continue
        if operator == "TJ":
            items = list(operands[0])
        else:
            items = [operands[-1]]
            if operator == '"':
                out.append(pikepdf.ContentStreamInstruction([operands[0]], pikepdf.Operator("Tw")))
                out.append(pikepdf.ContentStreamInstruction([operands[1]], pikepdf.Operator("Tc")))
            if operator in {"'", '"'}:
                out.append(pikepdf.ContentStreamInstruction([], pikepdf.Operator("T*")))
        unit = 1000.0 / (state.size * state.scale * a)
        array = _rebuild(items, width, wanted, unit)
        rise = wanted.vertical / d
        if rise:
            out.append(pikepdf.ContentStreamInstruction(
                [round(state.rise + rise, 4)], pikepdf.Operator("Ts")))
        out.append(pikepdf.ContentStreamInstruction([array], pikepdf.Operator("TJ")))
        if rise:
            out.append(pikepdf.ContentStreamInstruction([state.rise], pikepdf.Operator("Ts")))
        changed += 1
    if rank != text_objects or changed == 0:
        return None
    return pikepdf.unparse_content_stream(out), changed
