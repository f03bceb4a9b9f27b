"""What every benchmark shares: the machine description and the results file."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "BENCHMARKS.md"


def machine() -> str:
    model = "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, {platform.system()}"


def today() -> str:
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_section(title: str, body: str) -> None:
    """Replace (or add) the ``## title`` section of docs/BENCHMARKS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    heading = f"## {title}\n"
    section = heading + body.rstrip() + "\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if end == -1 else "\n" + text[end + 1:])
    RESULTS.write_text(text)
