"""The durable record: what agents told the live index reaches PostgreSQL (Peer and
Holding rows) through the flush, even when Redis restarts in between, and a flush that
meets a Redis that is away writes nothing half and catches up once it is back.

Redis here is a server of the test's own, run as production runs it for the index
(``appendonly yes``, ``appendfsync always``), on a folder it is restarted on. The platform
is in this process (Django, PostgreSQL), its settings pointed at that server as the
``live_index`` fixture points them at the suite's; agents speak to the real service over
HTTP, or are written with ``peerindex.store`` where a test needs exact times.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exchange.audit.models import AuditEvent
from exchange.peers import live_index
from exchange.peers.flush import index_flush
from exchange.peers.models import Holding, Peer
from exchange.peers.tasks import peer_index_flush_task
from peerindex import store
from peerindex.credentials import mint
from tests.index.conftest import RedisServer, bits, index_service, new_work

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.e2e]

SECRET = "3c" * 32


def raw_bits(count: int, held: set[int]) -> bytes:
    """The bitfield's bytes, MSB first, by hand."""
    return base64.b64decode(bits(count, held))


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


@pytest.fixture
def index_redis(own_redis: Callable[..., RedisServer], settings: Any) -> Iterator[RedisServer]:
    """The platform's live index on a redis-server with AOF of this test's own."""
    server = own_redis(appendonly=True)
    settings.REDIS_URL = server.url
    settings.PEER_INDEX = "redis"
    settings.INDEX_SECRET = SECRET
    settings.PIECE_SIZE = 16 * 1024  # several pieces from a small picture
    yield server
    # live_index keeps one client per URL; this URL dies with the test
    with contextlib.suppress(Exception):
        live_index.client().close()


@pytest.fixture
def works(index_redis: RedisServer, rita: Any, make_work: Callable[..., Any]
          ) -> tuple[Any, Any]:
    """Two works on sale, published to the index by the minute's sync (a work that
    becomes ready is not published at once: test_publishing.py)."""
    first = make_work(rita, title="First")
    second = make_work(rita, title="Second")
    assert live_index.works_sync() == 2
    conn = index_redis.conn()
    for work in (first, second):
        assert work.package.piece_count >= 4
        assert store.work_get(conn, str(work.pk)) == store.WorkEntry(work.package.piece_count)
    return first, second


def _holdings() -> set[tuple[str, str, int, bytes]]:
    return {(h.peer_id, str(h.work_id), h.have_count, bytes(h.bitfield))
            for h in Holding.objects.all()}


def test_the_record_catches_up_after_redis_restarts_from_its_append_only_file(
        index_redis: RedisServer, works: tuple[Any, Any], carol: Any, bob: Any,
        device_of: Callable[..., Any], tmp_path: Path) -> None:
    first, second = works
    n1, n2 = first.package.piece_count, second.package.piece_count
    _, carols = device_of(carol, "laptop")
    _, bobs = device_of(bob, "desktop")
    _, bobs_other = device_of(bob, "phone")
    conn = index_redis.conn()

    # Carol's agent, through the real service: both works, one in full.
    with index_service(tmp_path / "index.log", redis_url=index_redis.url,
                       secret=SECRET) as service:
        agent = service.client(mint(service.key, user=carol.pk, device=carols.device_id,
                                    now=int(time.time()), ttl=600))
        answer = agent.post("/index/v1/announce", json={
            "port": 7001, "version": "peermark-agent/9", "holdings": [
                {"work": str(first.pk), "bitfield": bits(n1, set(range(n1)))},
                {"work": str(second.pk), "bitfield": bits(n2, {0, 2})}]})
        assert answer.status_code == 200, answer.text
        beat_from = int(time.time())
        assert agent.post("/index/v1/heartbeat").status_code == 200
        beat_to = int(time.time())
    # Bob's agent, as the platform's own endpoints write it, at times chosen here; and a
    # credential naming Carol for a device of Bob's (never written to the record).
    t0 = int(time.time()) - 100
    store.announce(conn, device=bobs.device_id, user=bob.pk, host="192.0.2.10", port=7002,
                   version="", held=[store.Held(str(first.pk), 1, bits(n1, {1})),
                                     store.Held(new_work(), 3, "")],
                   replace=False, now=t0, peer_ttl=90)
    assert store.heartbeat(conn, [bobs.device_id], now=t0 + 40, peer_ttl=90) == []
    store.announce(conn, device=bobs_other.device_id, user=carol.pk, host="192.0.2.11",
                   port=7003, version="", held=[store.Held(str(first.pk), n1, "")],
                   replace=False, now=t0, peer_ttl=90)
    assert conn.hlen("pmi:dirty") == 3
    assert conn.hlen("pmi:seen") == 2

    # Redis restarts (orderly) before any flush ran.
    index_redis.shutdown()
    index_redis.start()
    assert conn.hlen("pmi:dirty") == 3
    assert conn.hlen("pmi:seen") == 2
    assert not Peer.objects.exists()

    assert index_flush() == 5  # three changed peers, two heartbeats
    peers = {p.pk: (p.user_id, p.host, p.port, p.agent_version) for p in Peer.objects.all()}
    assert peers == {carols.device_id: (carol.pk, "127.0.0.1", 7001, "peermark-agent/9"),
                     bobs.device_id: (bob.pk, "192.0.2.10", 7002, "")}
    carol_seen = Peer.objects.get(pk=carols.device_id).last_seen_at
    assert at(beat_from) <= carol_seen < at(beat_to + 1)
    assert Peer.objects.get(pk=bobs.device_id).last_seen_at == at(t0 + 40)
    assert _holdings() == {
        (carols.device_id, str(first.pk), n1, raw_bits(n1, set(range(n1)))),
        (carols.device_id, str(second.pk), 2, raw_bits(n2, {0, 2})),
        (bobs.device_id, str(first.pk), 1, raw_bits(n1, {1})),
    }
    assert set(AuditEvent.objects.filter(action="peer.register")
               .values_list("target_id", flat=True)) == {carols.device_id, bobs.device_id}
    assert conn.hlen("pmi:dirty") == 0
    assert conn.hlen("pmi:seen") == 0
    assert index_flush() == 0  # nothing left: the next run writes nothing


def _two_agents(conn: redis.Redis, first: Any, carols: Any, bobs: Any, carol: Any,
                bob: Any, t0: int) -> set[tuple[str, str, int, bytes]]:
    n1 = first.package.piece_count
    store.announce(conn, device=carols.device_id, user=carol.pk, host="192.0.2.1",
                   port=7001, version="v1", held=[store.Held(str(first.pk), n1, "")],
                   replace=False, now=t0, peer_ttl=90)
    store.announce(conn, device=bobs.device_id, user=bob.pk, host="192.0.2.2", port=7002,
                   version="v2", held=[store.Held(str(first.pk), 2, bits(n1, {0, 3}))],
                   replace=False, now=t0 + 1, peer_ttl=90)
    return {(carols.device_id, str(first.pk), n1, raw_bits(n1, set(range(n1)))),
            (bobs.device_id, str(first.pk), 2, raw_bits(n1, {0, 3}))}


def test_a_flush_while_redis_is_down_writes_nothing_and_catches_up_after(
        index_redis: RedisServer, works: tuple[Any, Any], carol: Any, bob: Any,
        device_of: Callable[..., Any]) -> None:
    first, _ = works
    _, carols = device_of(carol)
    _, bobs = device_of(bob)
    t0 = int(time.time()) - 50
    expected = _two_agents(index_redis.conn(), first, carols, bobs, carol, bob, t0)

    index_redis.kill()  # SIGKILL: with appendfsync always, every acknowledged write is kept
    with pytest.raises(redis.RedisError):
        index_flush()
    assert peer_index_flush_task() == 0  # the beat's task waits for the next run
    assert not Peer.objects.exists()
    assert not Holding.objects.exists()

    index_redis.start()
    assert index_flush() == 2
    assert _holdings() == expected
    assert {p.pk: (p.host, p.port, p.agent_version, p.last_seen_at)
            for p in Peer.objects.all()} == {
        carols.device_id: ("192.0.2.1", 7001, "v1", at(t0)),
        bobs.device_id: ("192.0.2.2", 7002, "v2", at(t0 + 1))}


def test_redis_lost_after_the_commit_leaves_the_marks_and_the_rerun_changes_nothing(
        index_redis: RedisServer, works: tuple[Any, Any], carol: Any, bob: Any,
        device_of: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis dies between the flush's commit and its dropping the marks it read: the
    rows are written, the marks stay (AOF), and the next flush rewrites the same rows
    (no duplicate holding, no second registration in the audit log)."""
    first, _ = works
    _, carols = device_of(carol)
    _, bobs = device_of(bob)
    t0 = int(time.time()) - 50
    conn = index_redis.conn()
    expected = _two_agents(conn, first, carols, bobs, carol, bob, t0)
    real_done = store.dirty_done

    def redis_dies_first(*args: Any, **kwargs: Any) -> int:
        index_redis.kill()
        return real_done(*args, **kwargs)

    monkeypatch.setattr(store, "dirty_done", redis_dies_first)  # flush.py calls it so
    with pytest.raises(redis.RedisError):
        index_flush()
    monkeypatch.setattr(store, "dirty_done", real_done)
    assert _holdings() == expected  # committed before Redis went

    index_redis.start()
    assert conn.hlen("pmi:dirty") == 2  # the marks outlived the crash
    assert index_flush() == 2
    assert _holdings() == expected
    assert Holding.objects.count() == 2
    assert AuditEvent.objects.filter(action="peer.register").count() == 2
    assert conn.hlen("pmi:dirty") == 0
