"""A bounded replay cache for order nonces, keyed by (licence id, nonce).

Each entry lives until its order's time window has passed; after that the order
is refused by its time alone, so the entry can go. Memory is bounded by
``max_entries``: when full, the entry closest to expiry is evicted and the cache
raises its floor to that entry's expiry, refusing any order whose window ends at
or before the floor. So an overflow can refuse a genuine old order, but it can
never let a replay through.
"""

from __future__ import annotations

import heapq

from .errors import MalformedError, ReplayedError

DEFAULT_MAX_ENTRIES = 200_000


class ReplayCache:
    """Remembers (licence id, nonce) pairs until they expire; refuses repeats."""

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise MalformedError("a replay cache holds at least one entry")
        self._max_entries = max_entries
        self._expiry: dict[tuple[str, str], int] = {}
        self._queue: list[tuple[int, tuple[str, str]]] = []
        self._floor = -(2**63)

    def __len__(self) -> int:
        return len(self._expiry)

    def check_and_add(self, key: tuple[str, str], *, expires_at: int, now: int) -> None:
        """Refuse ``key`` if seen and unexpired; otherwise remember it until ``expires_at``."""
        queue, expiry = self._queue, self._expiry
        while queue and queue[0][0] <= now:
            del expiry[heapq.heappop(queue)[1]]
        if expires_at <= self._floor:
            raise ReplayedError("too old to prove fresh (the replay cache overflowed)")
        if key in expiry:
            raise ReplayedError("order nonce already seen")
        if expires_at <= now:
            return  # already outside its window: nothing to remember
        expiry[key] = expires_at
        heapq.heappush(queue, (expires_at, key))
        if len(expiry) > self._max_entries:
            oldest, evicted = heapq.heappop(queue)
            del expiry[evicted]
            self._floor = max(self._floor, oldest)
