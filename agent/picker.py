"""Which piece to ask which source for next: the downloader's policy, without any I/O.

The downloader (``download.py``) owns the sockets, the threads and the clock; it tells
the picker what happened (a request started, a piece verified, a piece failed its
hash, a source is busy or gone) and asks it what to fetch next. Keeping the policy here,
synchronous and free of I/O, lets the tests drive it step by step with a fake clock.

The rules (docs/PROTOCOL.md, "Downloading"):

* Rarest first: a source is asked for the missing piece that the fewest live sources
  hold (random among equals), so a piece only one source holds is fetched before that
  source can go away.
* Connections: each source takes at most ``ceil(max_connections / live sources)``
  requests at once, capped at ``connections_per_source``; the least loaded ready source
  chooses first.
* Endgame: once every missing piece is in flight, an idle connection duplicates the
  piece that has waited longest at another source, up to ``endgame_copies`` copies;
  not a piece whose body is already being verified.
* Bad pieces are banned per source and piece (a piece is one byte range of the
  ciphertext): a source that sends bytes that do not match the manifest is never asked
  for that piece again, but its other pieces stay usable, so a mirror with one corrupt
  region still serves the rest of the file. A source loses trust with every bad piece
  and regains it with good ones, and is dropped once it has lost too much: libtorrent's
  trust points (+1 per good piece up to 8, -2 per bad piece, banned at -7), so a source
  that sends nothing but bad pieces is dropped after four.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from licensing.core.bitfield import bitfield_clear, bitfield_has

TRUST_GOOD = 1
TRUST_MAX = 8
TRUST_BAD = -2
TRUST_DROP = -7


@dataclass(frozen=True)
class DroppedSource:
    """A source the downloader stopped using, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class BannedPiece:
    """A piece a source sent wrong: that source is not asked for it again."""

    source: str
    piece: int
    reason: str


class SourceState:
    """The picker's view of one source: what it holds, how loaded and trusted it is."""

    __slots__ = (
        "bits",
        "busy_until",
        "dead",
        "key",
        "load",
        "order",
        "order_version",
        "position",
        "trust",
    )

    def __init__(self, key: str, bits: bytes) -> None:
        self.key = key
        self.bits = bytearray(bits)
        self.dead = False
        self.load = 0
        self.busy_until = 0.0
        self.trust = 0
        # This source's pending pieces, rarest first, as of ``order_version``.
        self.order: list[int] = []
        self.order_version = -1
        self.position = 0

    def holds(self, index: int) -> bool:
        return bitfield_has(self.bits, index)

    def __repr__(self) -> str:
        return f"SourceState({self.key!r})"


@dataclass(frozen=True)
class Pick:
    """Ask ``source`` for ``index`` (``endgame``: a duplicate of a request in flight)."""

    source: SourceState
    index: int
    endgame: bool


class PiecePicker:
    """The state of one download run: remaining, pending and in-flight pieces per source.

    ``sources`` are (key, bitfield) pairs with well-formed bitfields (a web seed holds
    every piece). ``random(n)`` gives the noise that breaks ties between equally rare
    pieces, so that downloaders do not all start on the same piece.
    """

    def __init__(
        self,
        *,
        missing: Sequence[int],
        sources: Sequence[tuple[str, bytes]],
        max_connections: int,
        connections_per_source: int,
        endgame_copies: int,
        random: Callable[[int], bytes],
    ) -> None:
        if max_connections < 1 or connections_per_source < 1:
            raise ValueError("a download needs at least one connection")
        self.sources = [SourceState(key, bits) for key, bits in sources]
        self.dropped: list[DroppedSource] = []
        self.bans: list[BannedPiece] = []
        self._max_connections = max_connections
        self._connections_per_source = connections_per_source
        self._endgame_copies = max(1, endgame_copies)
        self.remaining: set[int] = set(missing)
        self._pending: set[int] = set(missing)
        #: pieces put back after a failed request: offered before the rarest-first order
        self._requeued: set[int] = set()
        #: piece -> {source: when its request started}
        self._inflight: dict[int, dict[SourceState, float]] = {}
        #: pieces received and being verified (not worth duplicating in the endgame)
        self._checking: set[int] = set()
        noise = random(4 * len(missing)) if missing else b""
        self._tiebreak = {
            index: int.from_bytes(noise[4 * n : 4 * n + 4], "big")
            for n, index in enumerate(missing)
        }
        self._avail: dict[int, int] = {}
        self._per_source = 1
        self._version = 0
        self._recount()
        self._cover()

    # -- what the downloader reads -----------------------------------------------------

    @property
    def done(self) -> bool:
        return not self.remaining

    def live(self) -> list[SourceState]:
        return [s for s in self.sources if not s.dead]

    def orphans(self) -> list[int] | None:
        """The missing pieces no live source can give, once nothing else is left to do.

        None while something is pending or in flight (or nothing is missing): the
        download goes on with what the live sources hold, so a later run has less to
        fetch.
        """
        if self._pending or self._inflight or not self.remaining:
            return None
        return sorted(self.remaining)

    def rest_ends_in(self, now: float) -> float | None:
        """Seconds until the first resting (busy) source may be asked again."""
        ends = [s.busy_until - now for s in self.sources if not s.dead and s.busy_until > now]
        return max(0.01, min(ends)) if ends else None

    # -- choosing -----------------------------------------------------------------------

    def pick(self, now: float) -> Pick | None:
        """The next request to make, already counted as in flight; None if none is due."""
        ready = [
            s
            for s in self.sources
            if not s.dead and s.load < self._per_source and s.busy_until <= now
        ]
        ready.sort(key=lambda s: s.load)
        choice: Pick | None = None
        for src in ready:
            index = self._next_piece(src)
            if index is not None:
                self._pending.discard(index)
                choice = Pick(src, index, endgame=False)
                break
        if choice is None and not self._pending:
            choice = self._endgame(ready)
        if choice is not None:
            choice.source.load += 1
            self._inflight.setdefault(choice.index, {})[choice.source] = now
        return choice

    def _next_piece(self, src: SourceState) -> int | None:
        if self._requeued:
            best: int | None = None
            for index in list(self._requeued):
                if index not in self._pending:
                    self._requeued.discard(index)
                elif src.holds(index) and (
                    best is None or self._avail.get(index, 0) < self._avail.get(best, 0)
                ):
                    best = index
            if best is not None:
                self._requeued.discard(best)
                return best
        if src.order_version != self._version:
            src.order = sorted(
                (i for i in self._pending if src.holds(i)),
                key=lambda i: (self._avail.get(i, 0), self._tiebreak.get(i, 0)),
            )
            src.position = 0
            src.order_version = self._version
        order, pending = src.order, self._pending
        while src.position < len(order):
            index = order[src.position]
            src.position += 1
            if index in pending and src.holds(index):
                return index
        return None

    def _endgame(self, ready: Sequence[SourceState]) -> Pick | None:
        best: tuple[float, SourceState, int] | None = None
        for index, fetchers in self._inflight.items():
            if (
                len(fetchers) >= self._endgame_copies
                or index in self._checking
                or index not in self.remaining
            ):
                continue  # enough copies, one is being verified, or it is done
            since = min(fetchers.values())
            for src in ready:
                if src not in fetchers and src.holds(index) and (best is None or since < best[0]):
                    best = (since, src, index)
                    break
        return None if best is None else Pick(best[1], best[2], endgame=True)

    # -- what happened -----------------------------------------------------------------

    def answered(self, src: SourceState) -> None:
        """A request to ``src`` ended (body in, or failed): its connection is free."""
        src.load -= 1

    def checking(self, index: int) -> bool:
        """A body for ``index`` came in; False if the piece is no longer wanted."""
        if index not in self.remaining:
            return False
        self._checking.add(index)
        return True

    def checked(self, index: int) -> None:
        self._checking.discard(index)

    def verified(self, src: SourceState, index: int) -> list[SourceState]:
        """``src`` gave a good ``index``; the other sources still fetching it (to cancel)."""
        self.remaining.discard(index)
        self._pending.discard(index)
        src.trust = min(TRUST_MAX, src.trust + TRUST_GOOD)
        return [other for other in self._inflight.get(index, {}) if other is not src]

    def release(self, src: SourceState, index: int) -> None:
        """``src`` no longer fetches ``index``: put the piece back if nobody else does."""
        fetchers = self._inflight.get(index)
        if fetchers is not None:
            fetchers.pop(src, None)
            if not fetchers:
                del self._inflight[index]
        if (
            index in self.remaining
            and index not in self._inflight
            and self._avail.get(index, 0) > 0
        ):
            self._pending.add(index)
            self._requeued.add(index)

    def not_held(self, src: SourceState, index: int) -> None:
        """The source lacks a piece its bitfield claimed (or it sent no bitfield)."""
        self._forget(src, index)
        self._cover()

    def bad_piece(self, src: SourceState, index: int, reason: str) -> bool:
        """``src`` sent wrong bytes for ``index``: ban the piece there; True if dropped."""
        self.bans.append(BannedPiece(src.key, index, reason))
        self._forget(src, index)
        src.trust += TRUST_BAD
        if src.trust <= TRUST_DROP:
            bad = sum(1 for ban in self.bans if ban.source == src.key)
            return self.drop(src, f"{bad} bad pieces, the last {index}: {reason}")
        self._cover()
        return False

    def drop(self, src: SourceState, reason: str) -> bool:
        """Stop using ``src``; True if it was live. Its requests in flight are the caller's
        to cancel (each ends with ``answered`` and ``release``)."""
        if src.dead:
            return False
        src.dead = True
        self.dropped.append(DroppedSource(src.key, reason))
        self._recount()
        self._cover()
        return True

    def rest(self, src: SourceState, until: float) -> None:
        """The source is busy: do not ask it again before ``until``."""
        src.busy_until = until

    # -- bookkeeping --------------------------------------------------------------------

    def _forget(self, src: SourceState, index: int) -> None:
        if bitfield_clear(src.bits, index) and not src.dead and index in self._avail:
            self._avail[index] -= 1

    def _recount(self) -> None:
        """Availability of every remaining piece among live sources; reset the orders."""
        live = self.live()
        self._avail = {index: sum(1 for s in live if s.holds(index)) for index in self.remaining}
        share = math.ceil(self._max_connections / max(1, len(live)))
        self._per_source = max(1, min(self._connections_per_source, share))
        self._version += 1

    def _cover(self) -> None:
        """Set aside pending pieces no live source holds."""
        self._pending = {i for i in self._pending if self._avail.get(i, 0) > 0}
        self._requeued &= self._pending
