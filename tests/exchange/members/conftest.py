"""Shared by the members' services tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache

from exchange.accounts.models import User


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache, keyed by member id; ids are reused between
    tests on SQLite, so one test's counts must not reach the next."""
    cache.clear()


@pytest.fixture
def work(rita: User, make_work: Callable[..., Any]) -> Any:
    """Rita's work on sale (a module may define its own ``work``)."""
    return make_work(rita, title="Harbour at dawn")


@pytest.fixture
def licensed(work: Any, bob: User, fund: Callable[..., None],
             device_of: Callable[..., Any]) -> Any:
    """Bob holds a licence for Rita's work, bought the real way."""
    from exchange.purchases.services import purchase_create

    fund(bob, 10_000)
    _keys, device = device_of(bob)
    purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    return work
