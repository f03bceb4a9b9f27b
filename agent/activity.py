"""What this agent holds and what it has uploaded: the figures behind ``status`` and
``serve``'s status line.

Holdings are read from the piece store; past uploads from the order outbox (every
piece this peer delivered is one signed order there). While ``serve`` runs, an
``UploadMeter`` counts uploads as they happen, in memory, for the live line: it is fed
one call per piece served and read once a second at most, so it costs nothing on the
serving path. Its clock is a parameter, so tests step time instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.display import rate_text, size_text
from agent.money import format_amounts
from agent.outbox import OrderOutbox
from agent.store import PieceStore

#: the upload rate is the average over this many seconds
RATE_WINDOW_SECONDS = 10
#: a peer served a piece within this many seconds counts as connected
PEER_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Holding:
    """One work in the store: how much of it is here."""

    work_id: str
    title: str
    pieces_held: int
    pieces: int
    bytes_held: int
    size_bytes: int

    def as_json(self) -> dict[str, Any]:
        return {"work_id": self.work_id, "title": self.title or None,
                "pieces_held": self.pieces_held, "pieces": self.pieces,
                "bytes_held": self.bytes_held, "size_bytes": self.size_bytes}


def holdings(store: PieceStore, titles: Mapping[str, str]) -> list[Holding]:
    """Every work held, with its title where the agent knows one ("" otherwise)."""
    return [Holding(work_id=w.work_id, title=titles.get(w.work_id, ""),
                    pieces_held=w.held_count, pieces=w.piece_count, bytes_held=w.held_bytes,
                    size_bytes=w.manifest.ciphertext_size)
            for w in store.works()]


@dataclass(frozen=True)
class Upload:
    """What this peer served of one work lately (from the orders it holds)."""

    work_id: str
    title: str
    byte_count: int
    pieces: int
    peers: int
    first_at: int
    last_at: int

    def as_json(self) -> dict[str, Any]:
        return {"work_id": self.work_id, "title": self.title or None,
                "bytes": self.byte_count, "pieces": self.pieces, "peers": self.peers,
                "first_at": _iso(self.first_at), "last_at": _iso(self.last_at)}


def recent_uploads(outbox: OrderOutbox, titles: Mapping[str, str], *, since: float,
                   limit: int) -> list[Upload]:
    """The works served from ``since`` on, most recently served first, at most ``limit``."""
    return [Upload(work_id=s.work_id, title=titles.get(s.work_id, ""), byte_count=s.byte_count,
                   pieces=s.pieces, peers=s.peers, first_at=s.first_at, last_at=s.last_at)
            for s in outbox.recent_uploads(since, limit=limit)]


def _iso(at: int) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def local_day(at: float) -> dt.date:
    """The calendar day of a Unix time where this machine is: "today" for its user."""
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).astimezone().date()


def start_of_day(at: float) -> float:
    """The Unix time of the local midnight that began ``at``'s day."""
    moment = dt.datetime.fromtimestamp(at, tz=dt.UTC).astimezone()
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class UploadSnapshot:
    """``serve``'s figures at one instant."""

    peers: int
    rate_bps: float
    bytes_today: int
    pieces_today: int
    # Seeding credit per currency (minor units), from the platform; None until it answered.
    credit: Mapping[str, int] | None
    # Compute credit (earned by running compute jobs) likewise; empty for a member who
    # never contributed.
    compute_credit: Mapping[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"peers": self.peers, "upload_bytes_per_second": round(self.rate_bps),
                "bytes_served_today": self.bytes_today, "pieces_served_today": self.pieces_today,
                "seeding_credit_minor": None if self.credit is None else dict(self.credit),
                "compute_credit_minor": (None if self.compute_credit is None
                                         else dict(self.compute_credit))}


class UploadMeter:
    """Counts the pieces ``serve`` uploads: peers served lately, the upload rate, today's total.

    The rate is bytes over the last ``rate_window`` whole seconds, kept in one bucket per
    second; the peers are the distinct devices served within ``peer_window`` seconds.
    Both are bounded by their windows. "Today" is the local calendar day (``day_of``), so
    the total starts again at midnight.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 day_of: Callable[[float], dt.date] = local_day,
                 rate_window: int = RATE_WINDOW_SECONDS,
                 peer_window: float = PEER_WINDOW_SECONDS) -> None:
        self._clock = clock
        self._day_of = day_of
        self._rate_window = rate_window
        self._peer_window = peer_window
        self._buckets: deque[list[int]] = deque()  # [second, bytes], oldest first
        self._peers: dict[str, float] = {}
        self._day = day_of(clock())
        self._bytes_today = 0
        self._pieces_today = 0
        self.credit: Mapping[str, int] | None = None
        self.compute_credit: Mapping[str, int] | None = None

    def balances_seen(self, balances: list[dict[str, Any]]) -> None:
        """Take the seeding and compute credit from the platform's wallet answer."""
        self.credit = seeding_credit(balances)
        self.compute_credit = compute_credit(balances)

    def start_day(self, *, bytes_served: int, pieces: int) -> None:
        """Begin with what was already served today (read from the outbox at start-up)."""
        self._bytes_today, self._pieces_today = bytes_served, pieces

    def served(self, *, device_id: str, byte_count: int) -> None:
        """One piece delivered to ``device_id``."""
        now = self._clock()
        self._roll_day(now)
        self._bytes_today += byte_count
        self._pieces_today += 1
        self._peers[device_id] = now
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += byte_count
        else:
            self._buckets.append([second, byte_count])
        self._trim(second)

    def snapshot(self) -> UploadSnapshot:
        now = self._clock()
        self._roll_day(now)
        self._trim(int(now))
        recent = now - self._peer_window
        self._peers = {device: at for device, at in self._peers.items() if at > recent}
        return UploadSnapshot(
            peers=len(self._peers),
            rate_bps=sum(count for _second, count in self._buckets) / self._rate_window,
            bytes_today=self._bytes_today, pieces_today=self._pieces_today,
            credit=self.credit, compute_credit=self.compute_credit)

    def _trim(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self._rate_window:
            self._buckets.popleft()

    def _roll_day(self, now: float) -> None:
        day = self._day_of(now)
        if day != self._day:
            self._day, self._bytes_today, self._pieces_today = day, 0, 0


def _credit(balances: list[dict[str, Any]], kind: str) -> dict[str, int]:
    return {str(b["currency"]): int(b["balance_minor"]) for b in balances
            if b.get("kind") == kind}


def seeding_credit(balances: list[dict[str, Any]]) -> dict[str, int]:
    """The seeding-credit balances of the platform's wallet answer, per currency."""
    return _credit(balances, "seeding")


def compute_credit(balances: list[dict[str, Any]]) -> dict[str, int]:
    """The compute-credit balances of the platform's wallet answer, per currency."""
    return _credit(balances, "compute")


def status_line(snapshot: UploadSnapshot) -> str:
    """One line for a person: peers, upload rate, today's total, seeding credit, and
    compute credit once there is any."""
    peers = "1 peer" if snapshot.peers == 1 else f"{snapshot.peers} peers"
    pieces = "1 piece" if snapshot.pieces_today == 1 else f"{snapshot.pieces_today:,} pieces"
    parts = [peers, f"{rate_text(snapshot.rate_bps)} up",
             f"{size_text(snapshot.bytes_today)} served today ({pieces})"]
    if snapshot.credit is not None:
        parts.append(f"seeding credit {format_amounts(dict(snapshot.credit))}"
                     if snapshot.credit else "no seeding credit yet")
    if snapshot.compute_credit:
        parts.append(f"compute credit {format_amounts(dict(snapshot.compute_credit))}")
    return ", ".join(parts)
