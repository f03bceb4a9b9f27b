"""How the command line writes sizes, rates, ages and tables: text only, no I/O.

One place, so that ``search``, ``status``, ``wallet`` and ``serve``'s status line
show a size or a time the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size_text(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; bytes are whole, larger units have one decimal."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # the loop returns at the last unit


def rate_text(bytes_per_second: float) -> str:
    return f"{size_text(bytes_per_second)}/s"


def ago_text(seconds: float) -> str:
    """How long ago, coarsely: ``"just now"``, ``"5 min ago"``, ``"3 h ago"``, ``"2 days ago"``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
          right: Sequence[int] = (), indent: str = "") -> list[str]:
    """Rows under a header, columns as wide as their widest cell (``right``: the
    indices of right-aligned columns, for amounts and counts). No trailing spaces."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).rjust(widths[i]) if i in right else str(cell).ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def contribute_line(*, units_run: int, accepted: int, rejected: int, duplicate: int,
                    running: int, used_today_seconds: float, hours_per_day: int,
                    pause: str = "") -> str:
    """``contribute``'s live line: units run, the platform's answers so far (whether a
    result agreed with the quorum is known only later, when the unit is decided), units
    running now, today's hours, and why it is paused if it is."""
    answers = f"accepted {accepted:,}, rejected {rejected:,}"
    if duplicate:
        answers += f", duplicate {duplicate:,}"
    used = f"{used_today_seconds / 3600:.1f}/{hours_per_day} h today"
    text = f"units run {units_run:,} · {answers} · running {running} · {used}"
    return f"{text} · paused: {pause}" if pause else text


def terminal_safe(text: str, *, keep_lines: bool = False) -> str:
    """``text`` without control or format characters (ESC, CR, BiDi overrides...): what
    another member wrote (a work's title, a name, a message) must not drive the terminal.
    ``keep_lines`` keeps newline and tab, for a message's body."""
    return "".join(char for char in text if (keep_lines and char in "\n\t")
                   or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co"})


def when_text(stamp: str, now: datetime) -> str:
    """An ISO 8601 time from the platform as "3 min ago"; shown as it came (made safe) if
    it does not parse."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return terminal_safe(stamp)
    return ago_text((now - moment).total_seconds())
