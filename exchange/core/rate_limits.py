"""Per-member rate limits shared by the members' services (messages, reviews, rooms).

One counter per (action, member) in a fixed window, kept in Django's cache: Redis in
production, so every web process and every WebSocket consumer counts against the same
budget; the local-memory cache in the embedded demo (one process). The cache's ``add``
and ``incr`` are atomic in both, so two requests racing for the last slot cannot both
win. A fixed window lets a burst of up to twice the rate straddle a window's edge; for
limits meant to stop floods, not to meter, that is the accepted trade for one round trip
per check.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final

from django.core.cache import cache
from django.utils.translation import gettext as _

from exchange.core.errors import ServiceError

_RATE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_UNIT_SECONDS: Final = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                        "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """``count`` actions per ``seconds``."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"20/min"``, ``"5/10s"``, ``"100/day"``: the settings' notation (DRF's, plus
        a multiplier before the unit)."""
        match = _RATE.match(text)
        if not match:
            raise ValueError(f"not a rate: {text!r} (expected e.g. '20/min' or '5/10s')")
        count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
        if count < 1 or multiple < 1:
            raise ValueError(f"not a rate: {text!r} (count and period must be positive)")
        return cls(count, multiple * _UNIT_SECONDS[unit])


class RateLimitedError(ServiceError):
    """Too many actions of one kind in the window. ``retry_after`` is whole seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int


def hit(action: str, member: object, rate: Rate, *, now: float | None = None) -> Decision:
    """Count one ``action`` by ``member`` (a user id, or any stable key) against ``rate``."""
    moment = time.time() if now is None else now
    window = int(moment // rate.seconds)
    key = f"rate:{action}:{member}:{rate.seconds}:{window}"
    # add() sets the counter only if absent (with a lifetime past the window's end);
    # incr() is atomic, so the count is exact under concurrency
    cache.add(key, 0, timeout=rate.seconds + 5)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr: this request opens the window
        cache.set(key, 1, timeout=rate.seconds + 5)
        used = 1
    retry_after = max(1, int((window + 1) * rate.seconds - moment + 0.999))
    return Decision(used <= rate.count, max(0, rate.count - used), retry_after)


def check(action: str, member: object, rate: Rate, *, now: float | None = None) -> None:
    """Count one action, or raise `RateLimitedError` (HTTP 429 with Retry-After)."""
    decision = hit(action, member, rate, now=now)
    if not decision.allowed:
        raise RateLimitedError(
            _("Too many in a short time: try again in %(seconds)d s.")
            % {"seconds": decision.retry_after},
            retry_after=decision.retry_after,
        )
