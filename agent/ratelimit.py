"""A token bucket for upload and download caps (bytes per second), for asyncio.

``acquire(n)`` takes ``n`` tokens at once and, if that leaves the bucket in debt,
sleeps until the debt is repaid: callers send (or ask for) their bytes only after
their share of time has passed, so over any transfer longer than the burst the
average rate stays at the cap. Concurrent callers queue behind each other's debt.
The burst (bucket size) defaults to a tenth of a second of traffic, at most 64 KiB,
so over a whole transfer a cap overshoots by at most that many bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

#: the largest default burst, in bytes
DEFAULT_MAX_BURST = 64 * 1024


class TokenBucket:
    """Bytes-per-second cap with a bounded burst."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate cap is a positive number of bytes per second")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else min(self.rate / 10, DEFAULT_MAX_BURST)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def delay_for(self, amount: int) -> float:
        """Seconds ``acquire(amount)`` would wait now (without taking anything)."""
        self._refill()
        return max(0.0, (amount - self._tokens) / self.rate)

    async def acquire(self, amount: int) -> None:
        """Take ``amount`` tokens; wait until the bucket is out of debt."""
        self._refill()
        self._tokens -= amount
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate)
