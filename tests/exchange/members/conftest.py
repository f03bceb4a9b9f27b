"""Shared by the members' services tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache, keyed by member id; ids are reused between
    tests on SQLite, so one test's counts must not reach the next."""
    cache.clear()
