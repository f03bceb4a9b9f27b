"""A work's live holders, as one lookup read them, remembered by each process for a moment
(a second by default, ``PEERMARK_INDEX_SOURCES_CACHE_MS``) and shared by the lookups and
single-work announces of that work in the meantime.

Why: reading the holders is most of what a lookup costs (two round trips to Redis and
about sixty records parsed; docs/INDEX.md measures it), while what it reads changes
slowly: a peer is judged live on a timeout of minutes, so an answer a second old is as
true as a fresh one to within that second. A popular work's lookups, the index's heaviest
load, then cost Redis one read a second in each process, however many buyers ask. Lookups
that miss at the same moment share one read (no stampede when an entry expires), and a
failed read is not remembered.

What it costs, said in docs/INDEX.md: a peer that has just announced appears in others'
answers up to that moment later; a work with more seeders than one lookup reads hands out
the same ones for that moment, then others (the read starts at a random seeder).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from peerindex.records import Candidate, choose, render

MAX_WORKS = 20_000


@dataclass(slots=True)
class Holders:
    """One read of a work's holders, and the answers made from it so far: each holder's
    JSON is made once, and the whole answer once per number wanted (for an asker who is
    not one of the holders, as a buyer is not)."""

    found: list[Candidate]  # best first
    full_bitfield: bytes
    _parts: dict[bytes, bytes] = field(default_factory=dict)
    _chosen: dict[int, list[Candidate]] = field(default_factory=dict)
    _answers: dict[int, bytes] = field(default_factory=dict)

    def sources_json(self, want: int, skip: bytes = b"") -> bytes:
        """The JSON list of up to ``want`` sources, ``skip`` (the asker's device) never
        among them: for an asker who holds the work too (an announce), the best
        ``want + 1`` without it."""
        if skip:
            chosen = self._choice(want + 1)
            if any(c[6] == skip for c in chosen):
                return self._join([c for c in chosen if c[6] != skip][:want])
        answer = self._answers.get(want)
        if answer is None:
            answer = self._answers[want] = self._join(self._choice(want))
        return answer

    def _choice(self, want: int) -> list[Candidate]:
        chosen = self._chosen.get(want)
        if chosen is None:
            chosen = self._chosen[want] = choose(self.found, want)
        return chosen

    def _join(self, chosen: list[Candidate]) -> bytes:
        parts = self._parts
        out = []
        for candidate in chosen:
            part = parts.get(candidate[6])
            if part is None:
                part = parts[candidate[6]] = render(candidate, self.full_bitfield)
            out.append(part)
        return b"[" + b",".join(out) + b"]"


class SourcesCache:
    def __init__(self, seconds: float, *, max_works: int = MAX_WORKS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.max_works = max_works
        self.clock = clock
        # work -> (good until, holders read, what they were)
        self._fresh: dict[str, tuple[float, int, Holders]] = {}
        self._reading: dict[str, tuple[int, asyncio.Future[Holders]]] = {}
        self._generation = 0  # moved by ``forget``: a read begun before is not remembered

    async def read(self, work: str, fetch: int, full_bitfield: bytes,
                   load: Callable[[], Awaitable[list[Candidate]]]) -> Holders:
        """``work``'s holders from a read of at least ``fetch`` of them: a remembered one
        while it is fresh, the one in flight, or ``load()``'s."""
        if self.seconds <= 0:
            return Holders(sorted(await load(), reverse=True), full_bitfield)
        now = self.clock()
        entry = self._fresh.get(work)
        if entry is not None and entry[0] > now and entry[1] >= fetch:
            return entry[2]
        reading = self._reading.get(work)
        if reading is not None and reading[0] >= fetch:
            try:
                return await asyncio.shield(reading[1])
            except asyncio.CancelledError:
                if not reading[1].cancelled():
                    raise  # this lookup itself was cancelled
            # the one reading was cancelled: read alone
            return Holders(sorted(await load(), reverse=True), full_bitfield)
        future: asyncio.Future[Holders] = asyncio.get_running_loop().create_future()
        self._reading[work] = (fetch, future)
        generation = self._generation
        try:
            found = Holders(sorted(await load(), reverse=True), full_bitfield)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters, if any, each see it
            raise
        finally:
            if self._reading.get(work, (0, None))[1] is future:
                del self._reading[work]
        future.set_result(found)
        if generation == self._generation:
            self._remember(work, fetch, found, now)
        return found

    def _remember(self, work: str, fetch: int, found: Holders, now: float) -> None:
        if len(self._fresh) >= self.max_works:
            self._fresh = {w: e for w, e in self._fresh.items() if e[0] > now}
            if len(self._fresh) >= self.max_works:  # all fresh: a burst of distinct works
                self._fresh.clear()
        self._fresh[work] = (now + self.seconds, fetch, found)

    def forget(self) -> None:
        """Drop every remembered answer, and any read now in flight once it is answered
        (the revocations changed: a revoked device's peers must not be handed out from a
        read made before)."""
        self._fresh.clear()
        self._reading.clear()
        self._generation += 1
