"""The index's processes under uvicorn (uvloop, httptools): one, or several supervised.

With several workers each process listens on a socket of its own, bound to the same port
with ``SO_REUSEPORT``, and the kernel spreads new connections over them. uvicorn's own
workers share one socket: whichever process wakes first accepts every connection waiting,
so connections opened together land unevenly (measured with 32: 23 to 9, 28 to 4), and a
worker with twice the connections answers them twice as slowly (docs/INDEX.md).
"""

from __future__ import annotations

import contextlib
import ipaddress
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn

#: a worker that exits this soon after it started is not restarted (a broken start)
QUICK_EXIT_SECONDS = 5.0


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


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` that other processes may bind as well."""
    family = socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _worker(options: Options) -> None:
    sock = listening_socket(options.host, options.port)
    uvicorn.Server(options.config()).run(sockets=[sock])


def supervise(options: Options, workers: int) -> int:
    """Run ``workers`` processes until SIGINT or SIGTERM, or one of them stops cleanly. A
    worker that fails is started again, unless it failed at once (it cannot listen, say):
    then the others are stopped and the exit is 1."""
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = spawn.Process(target=_worker, args=(options,), daemon=False)
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    code = 0
    while not stopping:
        time.sleep(0.2)
        for at, (process, started) in enumerate(running):
            if stopping or process.is_alive():
                continue
            if process.exitcode == 0:  # told to stop (a signal to the process group)
                stopping = True
            elif time.monotonic() - started < QUICK_EXIT_SECONDS:
                stopping, code = True, 1
            else:
                running[at] = start()
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
