"""Where the index's time goes: py-spy on the service's processes during a wrk run of one
measure, outside the measured rounds (sampling slows the service a little).

py-spy is not a dependency of the project: install it anywhere (``pip install --target
/tmp/pyspy py-spy``) and pass ``--py-spy /tmp/pyspy/bin/py-spy`` to run.py. Samples are of
busy threads only (py-spy's default), at 200 a second.
"""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

GROUPS: list[tuple[str, Callable[[str], bool]]] = [
    ("uvicorn (HTTP parsing, proxy headers, writing answers)", lambda f: "uvicorn/" in f),
    ("event loop and socket I/O (uvloop under asyncio.run)", lambda f: "asyncio/" in f),
    ("JSON (stdlib)", lambda f: "json/" in f),
    ("base64 and bitfields", lambda f: "base64.py" in f or "core/bitfield.py" in f),
    ("HMAC (credential checks)", lambda f: "hmac.py" in f or "hashlib" in f),
    ("uvicorn supervisor's ping thread (multiprocessing pipe)",
     lambda f: "multiprocessing/" in f),
]


def record(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` and its children for ``seconds``, raw (collapsed) stacks."""
    return subprocess.Popen(
        [py_spy, "record", "--subprocesses", "--rate", "200", "--duration",
         str(max(1, round(seconds))), "--format", "raw", "--output", str(out),
         "--pid", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(py_spy).resolve().parents[1])})


def _group(frame: str) -> str:
    for label, test in GROUPS:
        if test(frame):
            return label
    if "peerindex/" in frame:
        module = frame.split("peerindex/", 1)[1].split(".py", 1)[0]
        return f"peerindex/{module}.py"
    return "other"


def summary(raw: Path) -> tuple[int, list[tuple[str, float]]]:
    """Samples, and each group's share of them by the innermost frame (self time)."""
    totals: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples += int(count)
        totals[_group(stack.split(";")[-1])] += int(count)
    return samples, [(label, n / samples) for label, n in totals.most_common()] if samples else []
