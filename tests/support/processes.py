"""Real processes for end-to-end tests: started with a deadline, logged, always stopped."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


_PICK = random.SystemRandom()  # not the random module's state, which tests may seed
_LOWEST_PORT = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port() -> int:
    """A loopback port free now, for a process about to listen on it. Taken below the
    kernel's ephemeral range where there is room: a port the kernel handed out (bind to
    0) can be handed out again, as the local end of any outgoing connection (to Redis,
    PostgreSQL, a peer), before the process binds it ("address already in use")."""
    low = _ephemeral_low()
    for _ in range(50 if low > _LOWEST_PORT + 1000 else 0):
        port = _PICK.randrange(_LOWEST_PORT, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None,
               interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- log tail ---\n" + log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


@contextlib.contextmanager
def running(args: list[str], *, env: dict[str, str], log: Path,
            cwd: Path = ROOT, inherit: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args`` in its own process group; on exit stop the whole group. ``env`` is
    added to this process's environment, or with ``inherit=False`` is the whole of it (a
    platform whose environment leaves out the suite's REDIS_URL must not get it back)."""
    full_env = {**os.environ, **env} if inherit else dict(env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
