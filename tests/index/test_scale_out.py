"""Scaling out: two index processes (as behind a load balancer) against one Redis keep no
state of their own that matters. An agent announced through one is heartbeat and found
through the other, both answer a lookup byte for byte alike, and a revocation or a
withdrawn work is refused by both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from peerindex import store
from peerindex.credentials import mint
from tests.conftest import index_redis_url
from tests.index.conftest import IndexService, bits, index_services, new_device, new_work, poll

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

PIECES = 12
FULL = bits(PIECES, range(PIECES))


@pytest.fixture(scope="module")
def pair(shared_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[IndexService, IndexService]]:
    logs = tmp_path_factory.mktemp("pair")
    with index_services([logs / "a.log", logs / "b.log"],
                        redis_url=index_redis_url()) as (a, b):
        yield a, b


def test_announced_through_one_heartbeat_and_found_through_the_other(
        pair: tuple[IndexService, IndexService], shared_redis: redis.Redis) -> None:
    a, b = pair
    work = new_work()
    store.works_put(shared_redis, {work: store.WorkEntry(PIECES, ("https://cdn.test/w",))})
    devices = [new_device() for _ in range(3)]
    held = {devices[0]: FULL, devices[1]: bits(PIECES, {0, 5, 11}), devices[2]: FULL}
    for device in devices:  # all through A
        answer = a.client(a.token(device=device)).post("/index/v1/announce", json={
            "port": 7000, "holdings": [{"work": work, "bitfield": held[device]}]})
        assert answer.status_code == 200, answer.text
    for device in devices:  # heartbeats through B find them live
        assert b.client(b.token(device=device)).post("/index/v1/heartbeat").status_code == 200
    path = f"/index/v1/works/{work}/sources"
    through_a = a.client(a.token()).get(path)
    through_b = b.client(b.token()).get(path)
    assert through_a.status_code == through_b.status_code == 200
    assert through_a.content == through_b.content
    found = through_a.json()
    # by hand: the two full holders (same network, so ordered by their heartbeat), then
    # the partial one with its own bitfield
    assert [s["have"] for s in found["sources"]] == [PIECES, PIECES, 3]
    assert {s["peer_id"] for s in found["sources"][:2]} == {devices[0], devices[2]}
    assert found["sources"][2] == {
        "peer_id": devices[1], "url": "http://127.0.0.1:7000",
        "bitfield": bits(PIECES, {0, 5, 11}), "have": 3,
        "last_seen": found["sources"][2]["last_seen"]}
    assert found["web_seeds"] == ["https://cdn.test/w"]


def test_a_single_work_announce_through_one_is_a_source_through_the_other(
        pair: tuple[IndexService, IndexService], shared_redis: redis.Redis) -> None:
    a, b = pair
    work = new_work()
    store.works_put(shared_redis, {work: store.WorkEntry(PIECES)})
    device = new_device()
    token = a.token(device=device)  # one credential, honoured by both
    first = b.client(token).get("/index/v1/announce", params={"work": work, "port": "7000"})
    assert first.json() == {"interval": 30, "sources": []}
    found = a.client(a.token()).get(f"/index/v1/works/{work}/sources").json()["sources"]
    assert [(s["peer_id"], s["have"], s["bitfield"]) for s in found] == [(device, PIECES, FULL)]
    stopped = a.client(token).get("/index/v1/announce",
                                  params={"work": work, "port": "7000", "event": "stopped"})
    assert stopped.status_code == 200
    assert b.client(b.token()).get(f"/index/v1/works/{work}/sources").json()["sources"] == []


def test_a_revocation_and_a_withdrawal_are_refused_by_both(
        pair: tuple[IndexService, IndexService], shared_redis: redis.Redis) -> None:
    a = pair[0]
    work, kept = new_work(), new_work()
    store.works_put(shared_redis, {work: store.WorkEntry(PIECES),
                                   kept: store.WorkEntry(PIECES)})
    device = new_device()
    token = mint(a.key, user=77, device=device, now=int(time.time()), ttl=600)
    other = a.token(user=78)
    for service in pair:  # both have it remembered as good before
        assert service.client(token).get(f"/index/v1/works/{kept}/sources").status_code == 200
        assert service.client(other).get(f"/index/v1/works/{work}/sources").status_code == 200

    store.revoke(shared_redis, {f"d:{device}": store.FOREVER})
    store.works_remove(shared_redis, [work])
    for service in pair:
        revoked, bystander = service.client(token), service.client(other)

        def refused(revoked: httpx.Client = revoked) -> bool:
            return revoked.get(f"/index/v1/works/{kept}/sources").status_code == 401

        def forgotten(bystander: httpx.Client = bystander) -> bool:
            return bystander.get(f"/index/v1/works/{work}/sources").status_code == 404

        poll(refused, what=f"{service.url} to refuse the revoked device")
        response = revoked.post("/index/v1/heartbeat")
        assert response.json()["error"]["code"] == "credential_revoked"
        poll(forgotten, what=f"{service.url} to forget the withdrawn work")
        assert bystander.get(f"/index/v1/works/{kept}/sources").status_code == 200


def test_redis_monitor_tells_the_index_traffic_from_the_platforms(
        pair: tuple[IndexService, IndexService], shared_redis: redis.Redis) -> None:
    """The instrument tests/e2e/test_sale.py relies on to show the fast path was taken:
    the same announce, once through each index process and once as the platform's
    endpoints make it (redis-py), is told apart by connection."""
    from tests.index.monitor import RedisMonitor

    work = new_work()
    store.works_put(shared_redis, {work: store.WorkEntry(PIECES)})
    by_index, by_platform = new_device(), new_device()
    url = index_redis_url()
    with RedisMonitor(url) as monitor:
        for service in pair:
            assert service.client(service.token(device=by_index)).post(
                "/index/v1/announce", json={"port": 7000, "holdings": [
                    {"work": work, "bitfield": FULL}]}).status_code == 200
        store.announce(shared_redis, device=by_platform, user=1, host="127.0.0.1", port=7000,
                       version="", held=[store.Held(work, PIECES, "")], replace=False,
                       now=int(time.time()), peer_ttl=90)
        poll(lambda: len(monitor.index_clients()) == 2, what="both index processes to poll")
    index = monitor.index_clients()
    keys = "pmi:p:{0} "  # an announce's first key, in its script or its MULTI
    assert len({s.client for s in monitor.mentioning(keys.format(by_index),
                                                     clients=index)}) == 2
    assert monitor.mentioning(keys.format(by_index), clients=index, others=True) == []
    assert monitor.mentioning(keys.format(by_platform), clients=index) == []
    assert len(monitor.mentioning(keys.format(by_platform), clients=index, others=True)) == 1


def test_with_answers_remembered_a_new_holder_appears_within_their_lifetime(
        shared_redis: redis.Redis, tmp_path: Path) -> None:
    """As deployed (answers remembered; 4 s here, a second by default): a lookup right
    after a change may give the answer of a moment ago, one after the lifetime gives the
    change, and an announcing holder never gets itself back, from either process."""
    with index_services([tmp_path / "a.log", tmp_path / "b.log"], redis_url=index_redis_url(),
                        sources_cache_ms=4000) as (a, b):
        work = new_work()
        store.works_put(shared_redis, {work: store.WorkEntry(PIECES)})
        first, second = new_device(), new_device()
        path = f"/index/v1/works/{work}/sources"

        def announce(device: str) -> list[str]:
            answer = b.client(b.token(device=device)).get(
                "/index/v1/announce", params={"work": work, "port": "7000"})
            assert answer.status_code == 200, answer.text
            return [s["peer_id"] for s in answer.json()["sources"]]

        def found() -> list[str]:
            return [s["peer_id"] for s in a.client(a.token()).get(path).json()["sources"]]

        assert announce(first) == []
        began = time.monotonic()
        assert found() == [first]  # read now and remembered by A
        assert announce(second) == [first]  # B read after both writes; never itself
        remembered = found()
        if time.monotonic() - began < 3.5:  # (a stalled machine could pass the lifetime)
            assert remembered == [first]
        poll(lambda: set(found()) == {first, second}, what="the new holder in A's answer",
             timeout=30)
        assert announce(first) == [second]  # B's remembered read, without the asker
