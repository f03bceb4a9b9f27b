"""What the fault drills share: a platform on a PostgreSQL and a Redis of its own, locks
that stop a process at a chosen statement, and the read-backs every drill ends with."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from tests.support.agents import AgentProcess
from tests.support.platform import Platform
from tests.support.processes import wait_until
from tests.support.services import PrivatePostgres, PrivateRedis


@dataclass
class Drill:
    site: Platform
    postgres: PrivatePostgres
    redis: PrivateRedis

    def settle_processes(self) -> None:
        """Bring back whatever an earlier drill left down (so one failure stays one)."""
        if not self.redis.ping():
            self.redis.start()
        try:
            self.postgres.sql("SELECT 1")
        except psycopg.Error:
            self.postgres.start()
        for name, process in list(self.site.processes.items()):
            if process.poll() is not None:
                self.site.restart(name)
        wait_until(lambda: _healthy(self.site.url), timeout=60, what="the platform",
                   log=self.site.logs / "server.log")

    def assert_books_balance(self) -> None:
        problems = self.site.books()
        assert problems == [], "\n".join(problems)

    def metered(self, licence_id: str) -> Counter[str]:
        """How often each order nonce of a licence is recorded (each should be once)."""
        rows = self.postgres.sql(
            "SELECT nonce FROM metering_meteredorder WHERE licence_id = %s", licence_id)
        return Counter(str(nonce) for (nonce,) in rows)

    def pending_in_stream(self) -> int:
        """Orders read from the metering stream but not acknowledged (a flush died)."""
        import redis

        conn = redis.Redis.from_url(self.redis.url)
        try:
            return int(conn.xpending("peermark:metering:orders", "flushers")["pending"])
        except redis.ResponseError:  # no group yet
            return 0
        finally:
            conn.close()

    def waiting(self, like: str) -> list[dict[str, Any]]:
        """Database sessions waiting for a lock, running a statement that matches."""
        rows = self.postgres.sql(
            "SELECT pid, client_port, query FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND query ILIKE %s", like)
        return [{"pid": pid, "client_port": port, "query": query} for pid, port, query in rows]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class HeldLock:
    """A transaction of the drill's own that holds a lock until ``release``: whoever
    needs it next waits inside its statement, mid-transaction, where the drill wants
    the process to be when it is killed."""

    def __init__(self, postgres: PrivatePostgres, statement: str, *params: object) -> None:
        self._conn = postgres.connect()
        self._conn.execute("BEGIN")
        self._conn.execute(statement, params or None)  # type: ignore[arg-type]

    def release(self) -> None:
        if not self._conn.closed:
            self._conn.execute("ROLLBACK")
            self._conn.close()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def outbox(agent: AgentProcess) -> tuple[set[tuple[str, str]], int]:
    """A serving agent's outbox: every (licence id, nonce) it accepted, and how many of
    them still wait to be submitted."""
    path = agent.home / "outbox.sqlite3"
    if not path.exists():
        return set(), 0
    with closing(sqlite3.connect(path, timeout=10)) as db:
        rows = db.execute("SELECT licence_id, nonce, sent_at FROM orders").fetchall()
    return {(lic, nonce) for lic, nonce, _sent in rows}, sum(1 for *_r, s in rows if s is None)
