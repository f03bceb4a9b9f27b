"""``python -m peerindex --workers N`` (peerindex/serve.py): each worker listens on the
port with a socket of its own, connections opened together are spread over them, a
worker that dies is started again, and the supervisor stops them all."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis

from peerindex.serve import QUICK_EXIT_SECONDS
from tests.conftest import index_redis_url
from tests.index.conftest import SECRET, IndexService, index_service
from tests.support.processes import free_port, python, wait_until

CONNECTIONS = 32


def _workers(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    workers = []
    for child in map(int, text.split()):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return workers


def _established(port: int) -> set[int]:
    """Socket inodes of the established TCP connections whose local port is ``port``."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def _sockets(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


@contextlib.contextmanager
def _two_workers(tmp_path: Path) -> Iterator[tuple[IndexService, int]]:
    """The service with two workers, both started; and its supervisor's pid."""
    with index_service(tmp_path / "index.log", redis_url=index_redis_url(),
                       workers=2) as service:
        supervisor = service.process.pid
        wait_until(lambda: len(_workers(supervisor)) == 2, timeout=30, what="two workers")
        yield service, supervisor


def test_connections_opened_together_are_spread_over_the_workers(
        shared_redis: redis.Redis, tmp_path: Path) -> None:
    with _two_workers(tmp_path) as (service, supervisor):
        port = int(service.url.rsplit(":", 1)[1])
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10)
                   for _ in range(CONNECTIONS)]
        try:
            for client in clients:  # each answered: accepted by a worker
                client.sendall(b"GET /index/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert client.recv(64).startswith(b"HTTP/1.1 200")
            established = _established(port)
            held = {worker: len(_sockets(worker) & established)
                    for worker in _workers(supervisor)}
        finally:
            for client in clients:
                client.close()
    assert sum(held.values()) == CONNECTIONS, held
    # By the kernel's hash, each worker's share is Binomial(32, 1/2): fewer than 4 has a
    # chance of about 1 in 100,000. uvicorn's shared socket gave 28 to 4 (docs/INDEX.md).
    assert min(held.values()) >= 4, held


def test_a_worker_that_dies_is_started_again_and_sigterm_stops_them_all(
        shared_redis: redis.Redis, tmp_path: Path) -> None:
    with _two_workers(tmp_path) as (service, supervisor):
        first = _workers(supervisor)
        time.sleep(QUICK_EXIT_SECONDS + 0.5)  # past it, a dead worker is started again
        os.kill(first[0], signal.SIGKILL)
        wait_until(lambda: len(set(_workers(supervisor)) - set(first)) == 1, timeout=30,
                   what="the killed worker to be started again")
        wait_until(lambda: httpx.get(f"{service.url}/index/v1/health",
                                     timeout=2).status_code == 200,
                   timeout=30, what="the index to answer")
        workers = _workers(supervisor)
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=30) == 0
        assert not [w for w in workers if Path(f"/proc/{w}").exists()
                    and "zombie" not in Path(f"/proc/{w}/status").read_text()]


def test_workers_that_cannot_listen_stop_the_start(tmp_path: Path) -> None:
    """The port taken by a socket that does not share it: every worker fails at once,
    and the supervisor exits 1 rather than starting them again without end."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    port = taken.getsockname()[1]
    env = {**os.environ, "REDIS_URL": index_redis_url() or "redis://127.0.0.1:6379/0",
           "PEERMARK_INDEX_SECRET": SECRET}
    try:
        done = subprocess.run(python("-m", "peerindex", "--port", str(port), "--workers", "2"),
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    finally:
        taken.close()
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Address already in use" in done.stderr
