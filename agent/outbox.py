"""The serving peer's outbox of signed orders: its proof for metering, kept on disk.

Every order the server accepted (and whose piece it sent) is appended once, keyed by
``(licence id, nonce)`` exactly as the platform de-duplicates them. The daemon flushes
the outbox to ``POST /api/v1/metering/orders/`` with ``pending`` and ``mark_sent``;
orders survive restarts, and nothing is lost while the platform is unreachable.
Submitted orders stay, marked sent: they are also this peer's record of what it served,
which ``status`` (recent uploads) and ``serve`` (bytes served today) read.

SQLite (stdlib) in WAL mode with ``synchronous=NORMAL``: a commit survives the process
being killed; a power cut may lose the last moments of orders, which costs this peer
some seeding credit and nobody else anything. Thread-safe (one connection, one lock).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from licensing.core import Order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    licence_id  TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    work_id     TEXT    NOT NULL,
    piece       INTEGER NOT NULL,
    byte_count  INTEGER NOT NULL,
    device_id   TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    sent_at     INTEGER,
    UNIQUE (licence_id, nonce)
);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS orders_received ON orders (received_at);
"""


class OutboxError(Exception):
    """The outbox file cannot be opened or written."""


@dataclass(frozen=True)
class PendingOrder:
    """An order waiting to be submitted for metering."""

    id: int
    token: str
    licence_id: str
    work_id: str
    piece: int
    byte_count: int
    received_at: int


@dataclass(frozen=True)
class ServedWork:
    """What this peer served of one work over a period: ``status``'s recent uploads."""

    work_id: str
    byte_count: int
    pieces: int
    peers: int  # distinct buyer devices (an order is signed by its licence's device)
    first_at: int
    last_at: int


class OrderOutbox:
    """Durable, de-duplicated queue of accepted order tokens."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise OutboxError(f"cannot open the order outbox {self.path}: {error}") from error

    def append(self, token: str, order: Order, *, work_id: str) -> bool:
        """Record an accepted order; False if the same (licence, nonce) is already in."""
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO orders (licence_id, nonce, token, work_id, piece, "
                    "byte_count, device_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        order.licence_id,
                        order.nonce,
                        token,
                        work_id,
                        order.piece,
                        order.byte_count,
                        order.device_id,
                        int(self._clock()),
                    ),
                )
            except sqlite3.Error as error:
                raise OutboxError(f"cannot record an order: {error}") from error
            return cursor.rowcount == 1

    def pending(self, limit: int = 500) -> list[PendingOrder]:
        """The oldest orders not yet submitted, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, token, licence_id, work_id, piece, byte_count, received_at "
                "FROM orders WHERE sent_at IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [PendingOrder(*row) for row in rows]

    def mark_sent(self, ids: Iterable[int]) -> int:
        """Mark orders as accepted by the platform; returns how many changed."""
        batch = [(int(self._clock()), int(i)) for i in ids]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                changed = 0
                for row in batch:
                    changed += self._db.execute(
                        "UPDATE orders SET sent_at = ? WHERE id = ? AND sent_at IS NULL", row
                    ).rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._db.execute("ROLLBACK")
                raise OutboxError(f"cannot mark orders as sent: {error}") from error
        return changed

    def count_pending(self) -> int:
        """How many orders wait to be submitted."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM orders WHERE sent_at IS NULL"
            ).fetchone()
        return int(count)

    def served_bytes(self) -> dict[str, int]:
        """Bytes served per licence id, over every order recorded (sent or not)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT licence_id, SUM(byte_count) FROM orders GROUP BY licence_id"
            ).fetchall()
        return {licence_id: int(total) for licence_id, total in rows}

    def served_since(self, since: float) -> tuple[int, int]:
        """``(bytes, pieces)`` served from ``since`` (a Unix time) on."""
        with self._lock:
            total, pieces = self._db.execute(
                "SELECT COALESCE(SUM(byte_count), 0), COUNT(*) FROM orders WHERE received_at >= ?",
                (int(since),),
            ).fetchone()
        return int(total), int(pieces)

    def recent_uploads(self, since: float, *, limit: int = 10) -> list[ServedWork]:
        """Per work, what was served from ``since`` on: the ``limit`` most recently served.

        Read from the orders themselves: every piece this peer delivered is one order
        here (an interrupted piece is not recorded), kept after it is submitted.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT work_id, SUM(byte_count), COUNT(*), COUNT(DISTINCT device_id), "
                "MIN(received_at), MAX(received_at) FROM orders WHERE received_at >= ? "
                "GROUP BY work_id ORDER BY MAX(received_at) DESC, work_id LIMIT ?",
                (int(since), limit),
            ).fetchall()
        return [ServedWork(str(work), int(total), int(pieces), int(peers), int(first), int(last))
                for work, total, pieces, peers, first, last in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
