"""What the platform tells the index at once (exchange/peers/signals.py, live_index.py):
the works on sale, and who is refused. The index refuses announces of a work it does not
know and keeps serving one it was not told is withdrawn, so each change must reach
``pmi:works`` when it commits, not a minute later at the catalogue's sync."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from peerindex import store

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_a_work_is_on_the_index_as_soon_as_it_is_ready(
        live_index: redis.Redis, rita: Any, make_work: Callable[..., Any]) -> None:
    work = make_work(rita)
    assert work.status == "ready"
    assert store.work_get(live_index, str(work.pk)) == store.WorkEntry(
        work.package.piece_count)


def test_a_withdrawn_work_leaves_the_index_as_soon_as_it_is_withdrawn(
        live_index: redis.Redis, rita: Any, make_work: Callable[..., Any],
        django_capture_on_commit_callbacks: Any) -> None:
    from exchange.catalogue.services import work_withdraw
    from exchange.peers import live_index as platform_index

    work = make_work(rita)
    platform_index.works_sync()  # on the index, however it got there
    assert store.work_get(live_index, str(work.pk)) is not None
    with django_capture_on_commit_callbacks(execute=True):
        work_withdraw(work=work, actor=rita)
    assert store.work_get(live_index, str(work.pk)) is None


def test_a_web_seed_added_is_published_with_the_work(
        live_index: redis.Redis, rita: Any, make_work: Callable[..., Any],
        django_capture_on_commit_callbacks: Any) -> None:
    from exchange.peers.services import web_seed_add

    work = make_work(rita)
    with django_capture_on_commit_callbacks(execute=True):
        web_seed_add(work=work, actor=rita, url="https://cdn.example.test/w.pmc")
    assert store.work_get(live_index, str(work.pk)) == store.WorkEntry(
        work.package.piece_count, ("https://cdn.example.test/w.pmc",))


def test_a_revoked_device_and_a_disabled_account_are_refused_at_once(
        live_index: redis.Redis, carol: Any, device_of: Callable[..., Any],
        django_capture_on_commit_callbacks: Any) -> None:
    from exchange.licensing.services import device_revoke

    _, device = device_of(carol)
    now = int(time.time())
    store.announce(live_index, device=device.device_id, user=carol.pk, host="192.0.2.1",
                   port=7000, version="", held=[], replace=False, now=now, peer_ttl=90)
    with django_capture_on_commit_callbacks(execute=True):
        device_revoke(device=device, actor=carol)
    assert f"d:{device.device_id}" in store.revoked(live_index, now=now)
    assert store.peer_record(live_index, device.device_id) is None  # out of every answer

    with django_capture_on_commit_callbacks(execute=True):
        carol.is_active = False
        carol.save()
    assert f"u:{carol.pk}" in store.revoked(live_index, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        carol.is_active = True
        carol.save()
    assert f"u:{carol.pk}" not in store.revoked(live_index, now=now)
