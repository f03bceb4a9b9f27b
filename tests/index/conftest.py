"""The index fast path as it runs: ``python -m peerindex`` as a real process on a free
loopback port, spoken to over HTTP, with Redis either the suite's own database or a
redis-server of the test's own that it may kill and start again.

Bitfields and credentials' expected values are built here by hand (the BitTorrent
layout, the HMAC formula of the spec), never by the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from peerindex import credentials
from tests.conftest import _skip_or_fail, index_redis_url
from tests.support.processes import free_port, python, running, wait_until
from tests.support.services import PrivateRedis

SECRET = "5e" * 32
#: every HTTP call of these tests gives up after this long (a hung service fails a test,
#: it does not stall the suite)
HTTP_TIMEOUT = 15.0


def bits(count: int, held: Iterable[int]) -> str:
    """A base64 bitfield (standard alphabet, padded), MSB first, built by hand."""
    raw = bytearray((count + 7) // 8)
    for index in held:
        raw[index // 8] |= 0x80 >> (index % 8)
    return base64.b64encode(bytes(raw)).decode()


def new_work() -> str:
    """A work id no other test uses (the service remembers works it has looked up)."""
    return str(uuid.uuid4())


def new_device() -> str:
    return "dev-" + uuid.uuid4().hex[:12]


@dataclass
class IndexService:
    """One running ``python -m peerindex`` and what a test needs to speak to it."""

    url: str
    key: bytes
    log: Path
    process: subprocess.Popen[bytes]
    clients: list[httpx.Client] = field(default_factory=list)

    def token(self, *, user: int = 1, device: str | None = None, ttl: int = 600,
              key: bytes | None = None) -> str:
        return credentials.mint(key or self.key, user=user, device=device or new_device(),
                                now=int(time.time()), ttl=ttl)

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client bearing ``token`` (none: anonymous), closed with the service."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        made = httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT, headers=headers)
        self.clients.append(made)
        return made

    def close(self) -> None:
        for made in self.clients:
            made.close()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/index/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def index_services(logs: list[Path], *, redis_url: str, secret: str = SECRET,
                   workers: int = 1, peer_timeout: int | None = None,
                   per_address: int | None = None, per_credential: int | None = None,
                   allow_announced_host: bool = False,
                   previous_secret: str = "", sources_cache_ms: int = 0,
                   ) -> Iterator[list[IndexService]]:
    """Start one service per log file, all at once, and wait until each answers its
    health check (Redis reachable). Lookups read Redis every time unless
    ``sources_cache_ms`` says otherwise: most tests look up right after a change."""
    env = {
        "REDIS_URL": redis_url,
        "PEERMARK_INDEX_SECRET": secret,
        "PEERMARK_INDEX_PREVIOUS_SECRET": previous_secret,
        "PEERMARK_PEER_TIMEOUT_SECONDS": "" if peer_timeout is None else str(peer_timeout),
        "PEERMARK_INDEX_RATE_PER_ADDRESS": "" if per_address is None else str(per_address),
        "PEERMARK_INDEX_RATE_PER_CREDENTIAL": ("" if per_credential is None
                                               else str(per_credential)),
        "PEERMARK_PEERS_ALLOW_ANNOUNCED_HOST": "true" if allow_announced_host else "",
        "PEERMARK_INDEX_SOURCES_CACHE_MS": str(sources_cache_ms),
    }
    with contextlib.ExitStack() as stack:
        services = []
        for log in logs:
            port = free_port()
            command = python("-m", "peerindex", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers))
            process = stack.enter_context(running(command, env=env, log=log))
            services.append(IndexService(url=f"http://127.0.0.1:{port}",
                                         key=credentials.parse_key(secret), log=log,
                                         process=process))
        for service in services:
            stack.callback(service.close)

            def ready(service: IndexService = service) -> bool:
                if service.process.poll() is not None:
                    raise AssertionError(f"the index exited ({service.process.returncode}):"
                                         f"\n{service.log_tail()}")
                return _answers(service.url)

            wait_until(ready, timeout=60, what="the index to answer", log=service.log)
        yield services


@contextlib.contextmanager
def index_service(log: Path, **options: Any) -> Iterator[IndexService]:
    """One service (``index_services`` has the options)."""
    with index_services([log], **options) as services:
        yield services[0]


def clear_index(conn: redis.Redis) -> None:
    keys = list(conn.scan_iter(match="pmi:*", count=1000))
    if keys:
        conn.delete(*keys)


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[redis.Redis]:
    """The in-process index tests' Redis database (``index_redis_url``: one per xdist
    worker, apart from the end-to-end platforms'), its index keys emptied before and
    after the module."""
    if not os.environ.get("REDIS_URL", ""):
        _skip_or_fail("needs Redis: set REDIS_URL=redis://... to a running server")
    url = index_redis_url()
    if not url:
        _skip_or_fail("needs Redis: set REDIS_URL=redis://... to a running server")
    conn = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        conn.ping()
    except redis.RedisError:
        _skip_or_fail(f"needs Redis: nothing answers at {url}")
    clear_index(conn)
    yield conn
    clear_index(conn)
    conn.close()


# --- a redis-server of a test's own ------------------------------------------------------


#: a redis-server of a test's own (the fault drills' kind, here also without AOF)
RedisServer = PrivateRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``own_redis(appendonly=False)``: a started redis-server of this test's own,
    always stopped at the end."""
    if shutil.which("redis-server") is None:
        _skip_or_fail("no redis-server on PATH")
    made: list[RedisServer] = []

    def make(*, appendonly: bool = False) -> RedisServer:
        root = tmp_path / f"redis{len(made)}"
        root.mkdir()
        server = RedisServer(root, appendonly=appendonly)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.close()


def poll(check: Callable[[], bool], *, what: str, timeout: float = 20.0,
         interval: float = 0.2) -> None:
    """Wait, with a generous deadline, for something the service notices on its own."""
    wait_until(check, timeout=timeout, what=what, interval=interval)
