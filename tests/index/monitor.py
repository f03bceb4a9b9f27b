"""Which process asked Redis what: Redis's own MONITOR, for end-to-end tests that must
tell the index fast path's traffic from the platform's, since both run the same scripts
on the same keys (the platform's own peer endpoints are the agents' fallback).

The index's processes are known by a command only they send: every second each polls
``MGET pmi:works:gen pmi:revoked:gen`` (app.py's watcher) on its one Redis connection
(link.py), and every request of that process travels on the same connection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

import redis

INDEX_WATCH = "MGET pmi:works:gen pmi:revoked:gen"


@dataclass(frozen=True)
class Seen:
    db: int
    client: str  # "address:port", or "lua" for what a script ran
    command: str


class RedisMonitor:
    """Record every command Redis receives while the ``with`` block runs."""

    def __init__(self, url: str) -> None:
        self._conn = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=5)
        self._db = int(self._conn.connection_pool.connection_kwargs.get("db", 0))
        self.seen: list[Seen] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RedisMonitor:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise AssertionError("Redis MONITOR did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._conn.close()
        if self._failed is not None and kind is None:
            raise AssertionError(f"Redis MONITOR failed: {self._failed}")

    def _run(self) -> None:
        try:
            with self._conn.monitor() as monitor:  # type: ignore[no-untyped-call]
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        found = monitor.next_command()
                    except redis.TimeoutError:
                        continue
                    if found and found["db"] == self._db:
                        client = ("lua" if found["client_type"] == "lua"
                                  else f"{found['client_address']}:{found['client_port']}")
                        self.seen.append(Seen(found["db"], client, found["command"]))
        except (redis.RedisError, OSError) as exc:
            self._failed = exc
            self._ready.set()

    # --- questions -----------------------------------------------------------------------

    def index_clients(self) -> set[str]:
        """The connections the index's processes speak on."""
        return {s.client for s in self.seen if s.command == INDEX_WATCH}

    def mentioning(self, text: str, *, clients: set[str] | None = None,
                   others: bool = False) -> list[Seen]:
        """Commands (not a script's inner ones) naming ``text``: from ``clients``, or
        with ``others`` from every connection but those."""
        chosen = clients or set()
        return [s for s in self.seen if s.client != "lua" and text in s.command
                and ((s.client not in chosen) if others else (s.client in chosen))]
