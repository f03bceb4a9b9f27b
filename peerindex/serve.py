"""The index's processes under uvicorn (uvloop, httptools): one, or several supervised.

With several workers each process listens on a socket of its own, bound to the same port
with ``SO_REUSEPORT``, and the kernel spreads new connections over them. uvicorn's own
workers share one socket: whichever process wakes first accepts every connection waiting,
so connections opened together land unevenly (measured with 32: 23 to 9, 28 to 4), and a
worker with twice the connections answers them twice as slowly (docs/INDEX.md).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn

#: a worker that exits this soon after it started is not restarted (a broken start)
QUICK_EXIT_SECONDS = 5.0
#: more restarts than this within ``CRASH_LOOP_SECONDS`` stop the service (exit 1)
CRASH_LOOP_RESTARTS = 5
CRASH_LOOP_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

log = logging.getLogger("peerindex.supervisor")


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    forwarded_allow_ips: str
    max_connections: int

    def config(self) -> uvicorn.Config:
        return uvicorn.Config(
            "peerindex.app:create_app", factory=True, host=self.host, port=self.port,
            loop="uvloop", http="httptools", lifespan="on", access_log=False,
            log_level="warning", limit_concurrency=self.max_connections,
            proxy_headers=bool(self.forwarded_allow_ips),
            forwarded_allow_ips=self.forwarded_allow_ips or None, ws="none")


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets on ``host:port`` that other processes may bind as well: one per address
    the host name gives (``localhost``: 127.0.0.1 and ::1), as uvicorn binds them."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in found:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server: IPv6 only here
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _quiet(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn raises again the signal it stopped on, once it has shut down cleanly, with
    the handler it found: this one, so a stopped process exits 0, not by the signal or
    with a KeyboardInterrupt traceback."""


def serve_one(options: Options, sockets: list[socket.socket] | None = None) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _quiet)
    uvicorn.Server(options.config()).run(sockets=sockets)


def _worker(options: Options, supervisor: int) -> None:
    """A worker starts with SIGINT and SIGTERM blocked (the supervisor's mask at its
    start): one that arrives while it is still importing is held, not a traceback, and
    stops it before it serves."""
    _die_with(supervisor)
    told: list[int] = []
    for sig in _STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: told.append(signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if not told:
        serve_one(options, listening_sockets(options.host, options.port))


def _die_with(supervisor: int) -> None:
    """On Linux the kernel kills this worker when the supervisor dies, even by SIGKILL:
    an orphaned worker would go on serving old code on the shared port unsupervised."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # it died before that was set
        raise SystemExit(1)


def supervise(options: Options, workers: int) -> int:
    """Run ``workers`` processes until SIGINT or SIGTERM. A worker that exits is started
    again, unless it exited at once (it cannot listen, say) or workers keep exiting (more
    than ``CRASH_LOOP_RESTARTS`` in a minute): then the others are stopped, exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = spawn.Process(target=_worker, args=(options, os.getpid()), daemon=False)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # see _worker
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # one held meanwhile: now
        return process, time.monotonic()

    running: list[tuple[multiprocessing.process.BaseProcess, float]] = []
    restarts: collections.deque[float] = collections.deque()
    code = 0
    try:
        running = [start() for _ in range(workers)]
        while not stopping:
            time.sleep(0.2)
            for at, (process, started) in enumerate(running):
                if stopping or process.is_alive():
                    continue
                now = time.monotonic()
                while restarts and now - restarts[0] > CRASH_LOOP_SECONDS:
                    restarts.popleft()
                if now - started < QUICK_EXIT_SECONDS or len(restarts) >= CRASH_LOOP_RESTARTS:
                    log.warning("worker %s exited (%s); stopping", process.pid,
                                process.exitcode)
                    stopping, code = True, 1
                    break
                log.warning("worker %s exited (%s); starting another", process.pid,
                            process.exitcode)
                restarts.append(now)
                running[at] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()
        for process, _ in running:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
                with contextlib.suppress(Exception):
                    process.join(timeout=5)
    return code
