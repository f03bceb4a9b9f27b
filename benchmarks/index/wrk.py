"""Running wrk with one of the benchmark's Lua scripts and reading its results.

Every script shares ``lua/common.lua``, whose ``done`` prints one ``WRKRESULT {json}``
line: requests, duration, socket and status errors, and latency percentiles (wrk's own
histogram, the same one ``--latency`` prints).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BINARY = "/usr/bin/wrk"
LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect and write errors, timeouts
    read_errors: int  # includes a server closing the connection after its answer
    bad_status: int  # answers other than 2xx/3xx
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(url: str, script: str, args: list[str], *, threads: int, connections: int,
        seconds: float, timeout_s: float = 10.0) -> WrkResult:
    """One wrk run of ``lua/<script>`` against ``url``."""
    command = [BINARY, "--latency", "-t", str(threads), "-c", str(connections),
               "-d", f"{seconds:g}s", "--timeout", f"{timeout_s:g}s",
               "-s", str(LUA / script), url, "--", *args]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PM_WRK_LUA": str(LUA)},
                          timeout=seconds + 120, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKRESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}"
                           f"{done.stdout[-2000:]}")
    raw = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        requests=raw["requests"], seconds=raw["duration_us"] / 1e6,
        errors=raw["connect_errors"] + raw["write_errors"] + raw["timeouts"],
        read_errors=raw["read_errors"],
        bad_status=raw["status_errors"], p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000, max_ms=raw["max_us"] / 1000)


def fill(url: str, script: str, args: list[str], *, done: Callable[[], bool],
         threads: int = 2, connections: int = 32, limit_s: float = 900.0) -> float:
    """Run a loading script until ``done()`` says the load is in (polled twice a second),
    then stop wrk as Ctrl-C does; returns the seconds it took."""
    command = [BINARY, "-t", str(threads), "-c", str(connections), "-d", f"{limit_s:g}s",
               "-s", str(LUA / script), url, "--", *args, str(threads)]
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PM_WRK_LUA": str(LUA)})
    try:
        while not done():
            if process.poll() is not None:
                raise RuntimeError("the loading wrk ended before the load was in: "
                                   + (process.stderr.read().decode() if process.stderr else ""))
            time.sleep(0.5)
        return time.monotonic() - began
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
