"""One redis-py client (and so one connection pool) per URL, timeout and process, shared by
the platform's users of Redis (the metering stream, the live peer index), never one per
request: a pool per request would open a connection per request."""

from __future__ import annotations

import redis
from django.conf import settings

_clients: dict[tuple[str, float | None], redis.Redis] = {}


def redis_client(purpose: str, *, timeout: float | None = None) -> redis.Redis:
    """The client for ``settings.REDIS_URL``; ``timeout`` bounds connecting and each reply
    (None: wait as long as it takes). ``purpose`` names the user in the error raised
    where no Redis is configured."""
    url = settings.REDIS_URL
    if not url:
        raise RuntimeError(f"{purpose} needs REDIS_URL")
    found = _clients.get((url, timeout))
    if found is None:
        found = _clients[(url, timeout)] = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return found
