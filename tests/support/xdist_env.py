"""Give each pytest-xdist worker a Redis database of its own.

Loaded with ``-p tests.support.xdist_env`` (scripts/test passes it with ``-n``), so it
runs before pytest-django reads the settings; run pytest the same way (``python -m
pytest -n 2 -p tests.support.xdist_env``) when running workers by hand against Redis.
Tests share one Redis server: the Django cache, the rate limits, the Channels layer and
the real Celery workers' broker all live there, and two workers sharing one database
would read each other's counters and take each other's tasks. Worker ``gwN`` uses
database ``base + N + 1`` (the suite's own number stays free for a serial run).
PostgreSQL needs nothing here: pytest-django already gives each worker its own test
database.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def _worker_url(url: str, worker: str) -> str:
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    number = int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{base + number + 1}"))


_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = _worker_url(os.environ["REDIS_URL"], _WORKER)
