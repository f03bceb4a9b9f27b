"""Small charts drawn on the server as inline SVG: no script, no build step, printable.

Amounts arrive as integer minor units and are labelled through the currency formatter,
so a chart never shows a float.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 640, 220
_LEFT, _BOTTOM, _TOP = 8, 28, 22


def bar_chart_svg(
    bars: Sequence[tuple[str, int]], *, label: Callable[[int], str], title: str
) -> str:
    """A bar per (category, value); values are non-negative integers."""
    if not bars:
        return ""
    peak = max(value for _, value in bars) or 1
    slot = (WIDTH - 2 * _LEFT) / len(bars)
    usable = HEIGHT - _BOTTOM - _TOP
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{HEIGHT - _BOTTOM}" x2="{WIDTH - _LEFT}" '
        f'y2="{HEIGHT - _BOTTOM}" class="axis"/>',
    ]
    for index, (category, value) in enumerate(bars):
        height = round(usable * value / peak)
        x = _LEFT + index * slot + slot * 0.15
        y = HEIGHT - _BOTTOM - height
        width = slot * 0.7
        centre = x + width / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{height}" class="bar">'
            f"<title>{escape(category)}: {escape(label(value))}</title></rect>"
        )
        if value:
            parts.append(f'<text x="{centre:.1f}" y="{y - 5}" class="value">'
                         f"{escape(label(value))}</text>")
        parts.append(f'<text x="{centre:.1f}" y="{HEIGHT - 9}" class="category">'
                     f"{escape(category)}</text>")
    parts.append("</svg>")
    return "".join(parts)
