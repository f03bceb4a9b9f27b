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


def _tcp_sockets(port: int, state: str = "01") -> set[int]:
    """Socket inodes of the TCP sockets whose local port is ``port``: established ones
    (state 01), or listening ones (0A)."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, inode = fields[1], int(fields[9])
            if fields[3] == state and int(local.rsplit(":", 1)[1], 16) == port:
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
        port = int(service.url.rsplit(":", 1)[1])
        # each worker listening (the first to listen would otherwise take every connection)
        wait_until(lambda: len(_workers(supervisor)) == 2
                   and len(_tcp_sockets(port, "0A")) == 2, timeout=30, what="two workers")
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
            established = _tcp_sockets(port)
            held = {worker: len(_sockets(worker) & established)
                    for worker in _workers(supervisor)}
        finally:
            for client in clients:
                client.close()
    assert sum(held.values()) == CONNECTIONS, held
    # By the kernel's hash, each worker's share is Binomial(32, 1/2): fewer than 4 has a
    # chance of about 1 in 100,000. uvicorn's shared socket gave 28 to 4 (docs/INDEX.md).
    assert min(held.values()) >= 4, held


def _gone(pids: list[int]) -> bool:
    """None of ``pids`` runs (a zombie waiting for its parent counts as gone)."""
    for pid in pids:
        try:
            if "zombie" not in Path(f"/proc/{pid}/status").read_text():
                return False
        except OSError:
            continue
    return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/index/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_worker_that_dies_is_started_again_and_sigint_stops_them_all(
        shared_redis: redis.Redis, tmp_path: Path) -> None:
    with _two_workers(tmp_path) as (service, supervisor):
        time.sleep(QUICK_EXIT_SECONDS + 0.5)  # past it, a dead worker is started again
        for sig in (signal.SIGKILL, signal.SIGTERM):  # killed, or told to stop alone
            before = _workers(supervisor)
            os.kill(before[0], sig)
            wait_until(lambda before=before: len(set(_workers(supervisor)) - set(before)) == 1,
                       timeout=30, what=f"the worker stopped by {sig!r} to be started again")
            wait_until(lambda: _healthy(service.url), timeout=30, what="the index to answer")
        workers = _workers(supervisor)
        os.killpg(supervisor, signal.SIGINT)  # Ctrl-C: the whole process group
        assert service.process.wait(timeout=30) == 0
        wait_until(lambda: _gone(workers), timeout=30, what="every worker to stop")
        log = service.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


def test_workers_do_not_outlive_their_supervisor(shared_redis: redis.Redis,
                                                 tmp_path: Path) -> None:
    """Killed outright (no chance to stop them), the supervisor still takes its workers
    with it: orphans would serve on the shared port unsupervised."""
    with _two_workers(tmp_path) as (_service, supervisor):
        workers = _workers(supervisor)
        os.kill(supervisor, signal.SIGKILL)
        wait_until(lambda: _gone(workers), timeout=30, what="the workers to stop")


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


def test_several_workers_on_port_0_are_refused() -> None:
    """Port 0 would give each worker a port of its own: one service on several ports."""
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/0",
           "PEERMARK_INDEX_SECRET": SECRET}
    done = subprocess.run(python("-m", "peerindex", "--port", "0", "--workers", "2"),
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "several workers share one port" in done.stderr
