"""The index fast path over real HTTP: ``python -m peerindex`` as it runs in production
(uvicorn, uvloop, httptools), on a loopback port, against a real Redis.

What the agents do (announce, heartbeat, ask for sources), every refusal the issue lists
(forged, expired and revoked credentials, works not on sale, malformed bitfields, floods,
oversized requests, Redis gone) with the error body's code and field, and that a refused
announce stored nothing. Sources the tests need in particular places are written with
``peerindex.store`` (as the platform's own endpoints write them), with times chosen here.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from peerindex import store
from tests.conftest import index_redis_url
from tests.index.conftest import (
    IndexService,
    RedisServer,
    bits,
    index_service,
    new_device,
    new_work,
    poll,
)

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

PIECES = 10
FULL = bits(PIECES, range(PIECES))  # "/8A=": 11111111 11000000
assert FULL == "/8A="
PARTIAL = bits(PIECES, {0, 1, 9})  # "wEA=": 11000000 01000000
assert PARTIAL == "wEA="


@pytest.fixture(scope="module")
def index(shared_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[IndexService]:
    """The service with the defaults (peer timeout 90 s, so the interval is 30 s)."""
    log = tmp_path_factory.mktemp("index") / "index.log"
    with index_service(log, redis_url=index_redis_url()) as service:
        yield service


@pytest.fixture(scope="module")
def quick_index(shared_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[IndexService]:
    """A service with a 5 s peer timeout, small rate limits, and announced hosts
    allowed (a deployment whose agents sit behind NAT with a known public address)."""
    log = tmp_path_factory.mktemp("quick") / "index.log"
    with index_service(log, redis_url=index_redis_url(), peer_timeout=5,
                       per_address=25, per_credential=5, allow_announced_host=True) as service:
        yield service


def on_sale(conn: redis.Redis, *, pieces: int = PIECES, seeds: tuple[str, ...] = ()) -> str:
    work = new_work()
    store.works_put(conn, {work: store.WorkEntry(pieces, seeds)})
    return work


def seed_peer(conn: redis.Redis, work: str, *, host: str, seen: int, have: int = PIECES,
              bitfield: str = "", device: str | None = None, user: int = 5) -> str:
    """A live holder written as the platform writes one (its time chosen here)."""
    device = device or new_device()
    store.announce(conn, device=device, user=user, host=host, port=7000, version="",
                   held=[store.Held(work, have, bitfield)], replace=False, now=seen,
                   peer_ttl=90)
    return device


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}, body
    assert body["message"], body
    return body


def assert_nothing_stored(conn: redis.Redis, device: str, works: list[str]) -> None:
    assert conn.exists(f"pmi:p:{device}", f"pmi:h:{device}", f"pmi:pb:{device}") == 0
    assert conn.hget("pmi:dirty", device) is None
    for work in works:
        assert conn.zscore(f"pmi:w:{work}", device) is None


def held_works(conn: redis.Redis, device: str) -> set[bytes]:
    """The works ``pmi:h:<device>`` lists (a hash of work -> "" in the present layout)."""
    key = f"pmi:h:{device}"
    kind = conn.type(key)
    found = conn.hkeys(key) if kind == b"hash" else conn.smembers(key)
    return {w if isinstance(w, bytes) else w.encode() for w in found}


def announce_body(*holdings: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"port": 7000, "holdings": [{"work": w, "bitfield": b} for w, b in holdings],
            **extra}


# --- what agents do ---------------------------------------------------------------------


class TestAnnounce:
    def test_a_multi_work_announce_stores_every_holding(self, index: IndexService,
                                                        shared_redis: redis.Redis) -> None:
        conn = shared_redis
        whole, part = on_sale(conn), on_sale(conn)
        device = new_device()
        agent = index.client(index.token(user=42, device=device))
        before = int(time.time())
        response = agent.post("/index/v1/announce", json=announce_body(
            (whole, FULL), (part, PARTIAL), version="peermark-agent/1.2"))
        assert response.status_code == 200, response.text
        assert response.json() == {"peer_id": device, "url": "http://127.0.0.1:7000",
                                   "interval": 30, "holdings": 2}
        assert conn.zscore(f"pmi:w:{whole}", device) == PIECES
        assert conn.hget(f"pmi:pb:{device}", whole) is None  # a full holder needs none
        assert conn.zscore(f"pmi:w:{part}", device) == 3
        assert conn.hget(f"pmi:pb:{device}", part) == PARTIAL.encode()
        assert held_works(conn, device) == {whole.encode(), part.encode()}
        assert conn.hget("pmi:dirty", device) is not None
        record = store.peer_record(conn, device)
        assert record is not None
        assert before <= record.seen <= int(time.time())
        assert (record.user, record.host, record.port, record.network, record.version) == (
            42, "127.0.0.1", 7000, "127.0.0.0", "peermark-agent/1.2")
        assert 0 < conn.ttl(f"pmi:p:{device}") <= 90

        # a full announce (replace) drops what it no longer lists
        again = agent.post("/index/v1/announce", json=announce_body((part, FULL), replace=True))
        assert again.json()["holdings"] == 1
        assert conn.zscore(f"pmi:w:{whole}", device) is None
        assert conn.zscore(f"pmi:w:{part}", device) == PIECES
        assert conn.hget(f"pmi:pb:{device}", part) is None
        assert held_works(conn, device) == {part.encode()}

        # an adding announce: partial again, then complete (its bitfield dropped), and a
        # work the peer no longer has (its bitfield dropped with it)
        assert agent.post("/index/v1/announce", json=announce_body(
            (part, PARTIAL), (whole, PARTIAL))).status_code == 200
        assert conn.hgetall(f"pmi:pb:{device}") == {part.encode(): PARTIAL.encode(),
                                                   whole.encode(): PARTIAL.encode()}
        # a full announce that leaves a partly held work out drops its bitfield too
        assert agent.post("/index/v1/announce", json=announce_body(
            (whole, PARTIAL), replace=True)).status_code == 200
        assert conn.hgetall(f"pmi:pb:{device}") == {whole.encode(): PARTIAL.encode()}
        assert conn.zscore(f"pmi:w:{part}", device) is None
        assert held_works(conn, device) == {whole.encode()}
        assert agent.post("/index/v1/announce", json=announce_body(
            (part, FULL), (whole, "AAA="))).status_code == 200
        assert conn.exists(f"pmi:pb:{device}") == 0
        assert conn.zscore(f"pmi:w:{part}", device) == PIECES
        assert conn.zscore(f"pmi:w:{whole}", device) is None
        assert held_works(conn, device) == {part.encode()}

        # an empty bitfield: holds nothing of it any more
        empty = agent.post("/index/v1/announce", json=announce_body((part, "AAA=")))
        assert empty.status_code == 200
        assert conn.zscore(f"pmi:w:{part}", device) is None
        assert held_works(conn, device) == set()

    def test_a_single_work_announce_answers_sources_without_the_asker(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        conn = shared_redis
        work = on_sale(conn)
        seen = int(time.time()) - 3
        other = seed_peer(conn, work, host="10.0.0.5", seen=seen)
        device = new_device()
        agent = index.client(index.token(device=device))
        response = agent.get("/index/v1/announce",
                             params={"work": work, "port": "7001", "bitfield": ""})
        assert response.status_code == 200, response.text
        assert response.json() == {"interval": 30, "sources": [
            {"peer_id": other, "url": "http://10.0.0.5:7000", "bitfield": FULL,
             "have": PIECES, "last_seen": seen}]}
        assert conn.zscore(f"pmi:w:{work}", device) == PIECES  # empty bitfield: every piece
        record = store.peer_record(conn, device)
        assert record is not None
        assert (record.host, record.port) == ("127.0.0.1", 7001)

        # the URL-safe alphabet, unpadded, as a query string carries it
        partial = agent.get("/index/v1/announce", params={
            "work": work, "port": "7001", "bitfield": PARTIAL.rstrip("=").replace("+", "-")
            .replace("/", "_")})
        assert partial.status_code == 200
        assert conn.zscore(f"pmi:w:{work}", device) == 3
        assert conn.hget(f"pmi:pb:{device}", work) == PARTIAL.encode()
        full = agent.get("/index/v1/announce",
                         params={"work": work, "port": "7001", "bitfield": "_8A"})
        assert full.status_code == 200
        assert conn.zscore(f"pmi:w:{work}", device) == PIECES
        assert conn.hget(f"pmi:pb:{device}", work) is None  # complete now: no bitfield kept

        # what another peer is told now: the asker is a source for it
        seen_by_other = index.client(index.token(device=other)).get(
            "/index/v1/announce", params={"work": work, "port": "7000"}).json()
        assert [s["peer_id"] for s in seen_by_other["sources"]] == [device]

        quiet = agent.get("/index/v1/announce",
                          params={"work": work, "port": "7001", "numwant": "0"})
        assert quiet.json() == {"interval": 30}
        stopped = agent.get("/index/v1/announce",
                            params={"work": work, "port": "7001", "event": "stopped"})
        assert stopped.status_code == 200
        assert conn.zscore(f"pmi:w:{work}", device) is None

    def test_a_heartbeat_before_announcing_is_409_and_after_it_200(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        device = new_device()
        agent = index.client(index.token(device=device))
        early = agent.post("/index/v1/heartbeat")
        assert early.status_code == 409
        body = error(early)
        assert body["code"] == "not_announced"
        assert list(body["fields"]) == ["device"]
        assert shared_redis.exists(f"pmi:p:{device}") == 0

        work = on_sale(shared_redis)
        assert agent.post("/index/v1/announce",
                          json=announce_body((work, PARTIAL))).status_code == 200
        shared_redis.hdel("pmi:seen", device)
        for key in (f"pmi:h:{device}", f"pmi:pb:{device}"):  # as if announced long ago
            shared_redis.expire(key, 100)
        beat = agent.post("/index/v1/heartbeat")
        assert beat.status_code == 200
        assert beat.json() == {"interval": 30}
        stamp = shared_redis.hget("pmi:seen", device)
        assert stamp is not None
        assert abs(int(stamp) / 1000 - time.time()) < 60
        # a live peer's works and bitfields live as long as its holdings (two hours)
        for key in (f"pmi:h:{device}", f"pmi:pb:{device}"):
            assert 7000 < shared_redis.ttl(key) <= 7200, key

    def test_heartbeats_of_many_peers_at_once_each_get_their_own_answer(
            self, index: IndexService) -> None:
        """Heartbeats arriving together share one script call (heartbeats.py): each
        still learns whether it is live."""
        import concurrent.futures

        live = [index.client(index.token()) for _ in range(6)]
        silent = [index.client(index.token()) for _ in range(6)]
        for agent in live:
            assert agent.post("/index/v1/announce", json=announce_body()).status_code == 200
        everyone = [(agent, 200) for agent in live] + [(agent, 409) for agent in silent]
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda pair: pair[0].post("/index/v1/heartbeat")
                                    .status_code, everyone))
        assert answers == [expected for _, expected in everyone]


    def test_the_most_holdings_one_announce_may_carry(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        works = [new_work() for _ in range(1000)]
        store.works_put(shared_redis, {w: store.WorkEntry(PIECES) for w in works})
        device = new_device()
        response = index.client(index.token(device=device)).post(
            "/index/v1/announce", json=announce_body(*[(w, FULL) for w in works]))
        assert response.status_code == 200, response.text
        assert response.json()["holdings"] == 1000
        assert len(held_works(shared_redis, device)) == 1000
        assert shared_redis.zscore(f"pmi:w:{works[-1]}", device) == PIECES

    def test_a_work_refused_before_it_was_on_sale_is_taken_once_it_is(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        """The service remembers that a work is not on sale; the platform's publishing
        it (the catalogue's generation) makes it ask again within about a second."""
        work = new_work()
        agent = index.client(index.token())
        early = agent.post("/index/v1/announce", json=announce_body((work, FULL)))
        assert error(early)["code"] == "unknown_work"
        store.works_put(shared_redis, {work: store.WorkEntry(PIECES)})
        poll(lambda: agent.post("/index/v1/announce",
                                json=announce_body((work, FULL))).status_code == 200,
             what="the index to learn the work is on sale")


class TestSources:
    def test_most_pieces_first_then_freshest_spread_across_networks(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        conn = shared_redis
        seeds = ("https://cdn.example.test/a.pmc", "https://mirror.example.test/a.pmc")
        work = on_sale(conn, seeds=seeds)
        now = int(time.time())
        older = seed_peer(conn, work, host="10.0.1.1", seen=now - 10)
        fresher = seed_peer(conn, work, host="10.0.1.2", seen=now - 1)  # same /24
        elsewhere = seed_peer(conn, work, host="10.0.2.1", seen=now - 20)
        partial = seed_peer(conn, work, host="10.0.3.1", seen=now, have=3, bitfield=PARTIAL)
        # By hand: full holders first, freshest first (fresher, older, elsewhere), then
        # the partial one; spread: each network's best before a second from any, so
        # older (10.0.1.0/24, like fresher) comes last.
        asker = index.client(index.token())
        body = asker.get(f"/index/v1/works/{work}/sources").json()
        assert body == {"interval": 30, "web_seeds": list(seeds), "sources": [
            {"peer_id": fresher, "url": "http://10.0.1.2:7000", "bitfield": FULL,
             "have": PIECES, "last_seen": now - 1},
            {"peer_id": elsewhere, "url": "http://10.0.2.1:7000", "bitfield": FULL,
             "have": PIECES, "last_seen": now - 20},
            {"peer_id": partial, "url": "http://10.0.3.1:7000", "bitfield": PARTIAL,
             "have": 3, "last_seen": now},
            {"peer_id": older, "url": "http://10.0.1.1:7000", "bitfield": FULL,
             "have": PIECES, "last_seen": now - 10},
        ]}
        two = asker.get(f"/index/v1/works/{work}/sources", params={"n": "2"}).json()
        assert [s["peer_id"] for s in two["sources"]] == [fresher, elsewhere]

    def test_ipv6_peers_are_spread_by_their_48(self, index: IndexService,
                                               shared_redis: redis.Redis) -> None:
        conn = shared_redis
        work = on_sale(conn)
        now = int(time.time())
        first = seed_peer(conn, work, host="2001:db8:1:a::1", seen=now)
        same_48 = seed_peer(conn, work, host="2001:db8:1:b::2", seen=now - 1)
        other_48 = seed_peer(conn, work, host="2001:db8:2::1", seen=now - 2)
        body = index.client(index.token()).get(f"/index/v1/works/{work}/sources").json()
        assert [(s["peer_id"], s["url"]) for s in body["sources"]] == [
            (first, "http://[2001:db8:1:a::1]:7000"), (other_48, "http://[2001:db8:2::1]:7000"),
            (same_48, "http://[2001:db8:1:b::2]:7000")]
        assert body["web_seeds"] == []

    def test_n_is_between_1_and_200(self, index: IndexService,
                                    shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        now = int(time.time())
        for octet in range(3):
            seed_peer(shared_redis, work, host=f"10.9.{octet}.1", seen=now)
        asker = index.client(index.token())
        for n, count in (("1", 1), ("3", 3), ("200", 3), ("", 3)):
            response = asker.get(f"/index/v1/works/{work}/sources", params={"n": n})
            assert response.status_code == 200, (n, response.text)
            assert len(response.json()["sources"]) == count
        for n in ("0", "201", "-1", "abc", "1.5", "99999999999999999999"):
            response = asker.get(f"/index/v1/works/{work}/sources", params={"n": n})
            assert response.status_code == 400, n
            assert error(response)["code"] == "invalid"
            assert list(error(response)["fields"]) == ["n"]

    @pytest.mark.parametrize("work", ["not-a-work", "00000000-0000-0000-0000-000000000000",
                                      "00000000-0000-0000-0000-00000000000G"])
    def test_a_work_not_on_sale_has_no_sources(self, index: IndexService, work: str) -> None:
        response = index.client(index.token()).get(f"/index/v1/works/{work}/sources")
        assert response.status_code == 404
        assert error(response)["code"] == "unknown_work"

    def test_a_holder_whose_peer_key_expired_is_left_out_and_swept(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        gone = seed_peer(shared_redis, work, host="10.7.0.1", seen=int(time.time()))
        shared_redis.delete(f"pmi:p:{gone}")  # its liveness key ran out (quick_index: real)
        body = index.client(index.token()).get(f"/index/v1/works/{work}/sources").json()
        assert body["sources"] == []
        assert shared_redis.zscore(f"pmi:w:{work}", gone) is None


# --- refusals ---------------------------------------------------------------------------


def _bad_announces() -> list[Any]:
    """(body given the on-sale work w and another on-sale work v, status, code, field)."""
    def holding(work: str, bitfield: str = FULL) -> dict[str, str]:
        return {"work": work, "bitfield": bitfield}

    cases: list[tuple[str, Any, int, str, str]] = [
        ("not-json", b"{nope", 400, "invalid", ""),
        ("not-an-object", b"[]", 400, "invalid", ""),
        ("no-port", lambda w, v: {"holdings": [holding(w)]}, 400, "invalid", "port"),
        ("port-text", lambda w, v: {"port": "7000"}, 400, "invalid", "port"),
        ("port-zero", lambda w, v: {"port": 0}, 400, "invalid", "port"),
        ("port-high", lambda w, v: {"port": 65536}, 400, "invalid", "port"),
        ("port-bool", lambda w, v: {"port": True}, 400, "invalid", "port"),
        ("host-garbage", lambda w, v: {"port": 7000, "host": "not a host!"}, 400, "invalid",
         "host"),
        ("host-not-the-senders", lambda w, v: {"port": 7000, "host": "203.0.113.9",
                                               "holdings": [holding(w)]},
         400, "host_mismatch", "host"),
        ("version-long", lambda w, v: {"port": 7000, "version": "x" * 41}, 400, "invalid",
         "version"),
        ("version-control", lambda w, v: {"port": 7000, "version": "a\nb"}, 400, "invalid",
         "version"),
        ("replace-text", lambda w, v: {"port": 7000, "replace": "yes"}, 400, "invalid",
         "replace"),
        ("holdings-object", lambda w, v: {"port": 7000, "holdings": {}}, 400, "invalid",
         "holdings"),
        ("holdings-1001", lambda w, v: {"port": 7000, "holdings": [
            holding(new_work()) for _ in range(1001)]}, 400, "invalid", "holdings"),
        ("holding-text", lambda w, v: {"port": 7000, "holdings": ["x"]}, 400, "invalid",
         "holdings[0]"),
        ("work-malformed", lambda w, v: {"port": 7000, "holdings": [holding("nope")]},
         400, "invalid", "holdings[0].work"),
        ("work-twice", lambda w, v: {"port": 7000, "holdings": [holding(w), holding(w)]},
         400, "invalid", "holdings[1].work"),
        ("bitfield-number", lambda w, v: {"port": 7000, "holdings": [
            {"work": w, "bitfield": 5}]}, 400, "invalid", "holdings[0].bitfield"),
        ("work-not-on-sale", lambda w, v: {"port": 7000, "holdings": [holding(new_work())]},
         400, "unknown_work", "holdings[0].work"),
        ("second-work-not-on-sale", lambda w, v: {"port": 7000, "holdings": [
            holding(w), holding(new_work())]}, 400, "unknown_work", "holdings[1].work"),
        ("bitfield-not-base64", lambda w, v: {"port": 7000, "holdings": [holding(w, "***")]},
         400, "invalid", "holdings[0].bitfield"),
        ("bitfield-urlsafe-in-json", lambda w, v: {"port": 7000, "holdings": [
            holding(w, "_8A=")]}, 400, "invalid", "holdings[0].bitfield"),
        ("bitfield-too-long", lambda w, v: {"port": 7000, "holdings": [
            holding(w, base64.b64encode(b"\xff" * 99).decode())]},
         400, "invalid", "holdings[0].bitfield"),
        ("bitfield-a-byte-short", lambda w, v: {"port": 7000, "holdings": [
            holding(w, "/w==")]}, 400, "invalid", "holdings[0].bitfield"),
        ("bitfield-spare-bits", lambda w, v: {"port": 7000, "holdings": [
            holding(w, "//8=")]}, 400, "invalid", "holdings[0].bitfield"),
        ("second-bitfield-malformed", lambda w, v: {"port": 7000, "holdings": [
            holding(w), holding(v, "AAAA")]}, 400, "invalid", "holdings[1].bitfield"),
    ]
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


class TestRefusedAnnounces:
    @pytest.mark.parametrize(("body", "status", "code", "field"), _bad_announces())
    def test_a_bad_announce_is_refused_naming_its_field_and_stores_nothing(
            self, index: IndexService, shared_redis: redis.Redis, body: Any, status: int,
            code: str, field: str) -> None:
        work, other = on_sale(shared_redis), on_sale(shared_redis)
        device = new_device()
        agent = index.client(index.token(device=device))
        if callable(body):
            response = agent.post("/index/v1/announce", json=body(work, other))
        else:
            response = agent.post("/index/v1/announce", content=body,
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
        found = error(response)
        assert found["code"] == code
        assert list(found["fields"]) == ([field] if field else [])
        assert_nothing_stored(shared_redis, device, [work, other])

    @pytest.mark.parametrize(("params", "code", "field"), [
        ({"port": "7000"}, "invalid", "work"),
        ({"work": "nope", "port": "7000"}, "invalid", "work"),
        ({"work": "{w}", "port": "0"}, "invalid", "port"),
        ({"work": "{w}", "port": "x"}, "invalid", "port"),
        ({"work": "{w}", "port": "7000", "numwant": "201"}, "invalid", "numwant"),
        ({"work": "{new}", "port": "7000"}, "unknown_work", "work"),
        ({"work": "{new}", "port": "7000", "event": "stopped"}, "unknown_work", "work"),
        ({"work": "{w}", "port": "7000", "bitfield": "***"}, "invalid", "bitfield"),
        ({"work": "{w}", "port": "7000", "bitfield": "__8"}, "invalid", "bitfield"),
        ({"work": "{w}", "port": "7000", "bitfield": "_" * 50}, "invalid", "bitfield"),
    ], ids=["no-work", "work-malformed", "port-zero", "port-text", "numwant-high",
            "not-on-sale", "stopped-not-on-sale", "bitfield-garbage", "bitfield-spare-bits",
            "bitfield-too-long"])
    def test_a_bad_single_work_announce_is_refused_and_stores_nothing(
            self, index: IndexService, shared_redis: redis.Redis, params: dict[str, str],
            code: str, field: str) -> None:
        work = on_sale(shared_redis)
        device = new_device()
        filled = {k: v.replace("{w}", work).replace("{new}", new_work())
                  for k, v in params.items()}
        response = index.client(index.token(device=device)).get("/index/v1/announce",
                                                                 params=filled)
        assert response.status_code == 400, response.text
        assert error(response)["code"] == code
        assert list(error(response)["fields"]) == [field]
        assert_nothing_stored(shared_redis, device, [work])

    def test_an_oversized_announce_is_413_and_stores_nothing(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        device = new_device()
        agent = index.client(index.token(device=device))
        body = json.dumps({"port": 7000, "holdings": [{"work": work, "bitfield": FULL}],
                           "version": "", "pad": "x" * (1 << 20)}).encode()
        response = agent.post("/index/v1/announce", content=body,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert error(response)["code"] == "too_large"
        assert_nothing_stored(shared_redis, device, [work])
        beat = agent.post("/index/v1/heartbeat", content=b"x" * 2048)
        assert beat.status_code == 413
        assert error(beat)["code"] == "too_large"

    def test_a_deeply_nested_announce_is_a_clear_400_and_stores_nothing(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        device = new_device()
        body = b'{"port":7000,"holdings":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        response = index.client(index.token(device=device)).post(
            "/index/v1/announce", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert error(response)["code"] == "invalid"
        assert "nested too deep" in error(response)["message"]
        assert_nothing_stored(shared_redis, device, [work])

    def test_a_body_that_trickles_in_is_408_after_ten_seconds_and_stores_nothing(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        """A client that sends part of its body and then nothing holds the request (and
        its memory) no longer than the service's limit (``BODY_SECONDS``, 10 s)."""
        work = on_sale(shared_redis)
        device = new_device()
        body = json.dumps({"port": 7000, "holdings": [{"work": work, "bitfield": FULL}]})
        port = int(index.url.rsplit(":", 1)[1])
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(
                b"POST /index/v1/announce HTTP/1.1\r\nHost: index\r\n"
                b"Authorization: Bearer " + index.token(device=device).encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body[:10].encode())
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
        waited = time.monotonic() - began
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert json.loads(payload)["error"]["code"] == "timeout"
        # the service's limit, not sooner (no upper bound: a loaded machine may be slow)
        assert waited >= 9.5
        assert_nothing_stored(shared_redis, device, [work])

    def test_an_oversized_credential_is_unauthenticated(self, index: IndexService) -> None:
        response = index.client("pmi1." + "a" * 600 + ".b").get("/index/v1/works/x/sources")
        assert response.status_code == 401
        assert error(response)["code"] == "unauthenticated"

    @pytest.mark.parametrize("path", ["/index/v1/works/{w}/sources", "/index/v1/announce"])
    def test_a_query_of_too_many_fields_is_a_clear_400(
            self, index: IndexService, shared_redis: redis.Redis, path: str) -> None:
        work = on_sale(shared_redis)
        query = "&".join([f"work={work}", "port=7000"] + [f"f{i}=1" for i in range(30)])
        response = index.client(index.token()).get(f"{path.format(w=work)}?{query}")
        assert response.status_code == 400, response.text
        assert error(response)["code"] == "invalid"

    def test_an_unknown_route_and_a_wrong_method(self, index: IndexService) -> None:
        agent = index.client(index.token())
        missing = agent.get("/index/v1/nothing")
        assert missing.status_code == 404
        assert error(missing)["code"] == "not_found"
        wrong = agent.get("/index/v1/heartbeat")
        assert wrong.status_code == 405
        assert error(wrong)["code"] == "method_not_allowed"


class TestCredentials:
    def test_no_forged_or_foreign_credential_is_let_in(self, index: IndexService,
                                                       shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        device = new_device()
        good = index.token(device=device)
        prefix, claims, mac = good.split(".")
        forged = f"{prefix}.{claims}.{mac[::-1]}"
        foreign = index.token(device=device, key=bytes.fromhex("a7" * 32))
        for token, header in ((None, None), (good, f"Basic {good}"), (forged, None),
                              (foreign, None), ("pmi1.x.y", None)):
            agent = index.client(token if header is None else None)
            if header is not None:
                agent.headers["Authorization"] = header
            for response in (
                    agent.get(f"/index/v1/works/{work}/sources"),
                    agent.post("/index/v1/announce", json=announce_body((work, FULL))),
                    agent.post("/index/v1/heartbeat")):
                assert response.status_code == 401, (token, response.text)
                assert error(response)["code"] == "unauthenticated"
        assert_nothing_stored(shared_redis, device, [work])

    def test_an_expired_credential_is_told_so(self, index: IndexService,
                                              shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        device = new_device()
        from peerindex.credentials import mint

        expired = mint(index.key, user=1, device=device, now=int(time.time()) - 120, ttl=60)
        agent = index.client(expired)
        response = agent.post("/index/v1/announce", json=announce_body((work, FULL)))
        assert response.status_code == 401
        assert error(response)["code"] == "credential_expired"
        assert_nothing_stored(shared_redis, device, [work])

    @pytest.mark.parametrize("kind", ["device", "user", "credential"])
    def test_a_revocation_is_noticed_within_about_a_second(
            self, index: IndexService, shared_redis: redis.Redis, kind: str) -> None:
        from peerindex.credentials import mint

        work = on_sale(shared_redis)
        user, device, jti = int(time.time() * 1000) % 10**9, new_device(), os.urandom(16).hex()
        token = mint(index.key, user=user, device=device, now=int(time.time()), ttl=600,
                     jti=jti)
        agent = index.client(token)
        assert agent.post("/index/v1/announce",
                          json=announce_body((work, FULL))).status_code == 200
        bystander = index.client(index.token(user=user + 1))
        member = {"device": f"d:{device}", "user": f"u:{user}", "credential": f"c:{jti}"}[kind]
        store.revoke(shared_redis, {member: int(time.time()) + 600})

        def refused() -> bool:
            return agent.get(f"/index/v1/works/{work}/sources").status_code == 401

        poll(refused, what=f"the index to refuse a revoked {kind}")
        for response in (agent.get(f"/index/v1/works/{work}/sources"),
                         agent.post("/index/v1/heartbeat"),
                         agent.post("/index/v1/announce", json=announce_body((work, FULL)))):
            assert response.status_code == 401
            assert error(response)["code"] == "credential_revoked"
        assert bystander.get(f"/index/v1/works/{work}/sources").status_code == 200

    def test_a_withdrawn_work_is_refused_within_about_a_second(
            self, index: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        agent = index.client(index.token())
        assert agent.post("/index/v1/announce",
                          json=announce_body((work, FULL))).status_code == 200
        assert agent.get(f"/index/v1/works/{work}/sources").status_code == 200
        store.works_remove(shared_redis, [work])
        poll(lambda: agent.get(f"/index/v1/works/{work}/sources").status_code == 404,
             what="the index to forget a withdrawn work")
        refused = agent.post("/index/v1/announce", json=announce_body((work, FULL)))
        assert refused.status_code == 400
        assert error(refused)["code"] == "unknown_work"
        single = agent.get("/index/v1/announce", params={"work": work, "port": "7000"})
        assert single.status_code == 400
        assert error(single)["code"] == "unknown_work"


# --- the quick service: expiry, floods, announced hosts ------------------------------------


def calm(service: IndexService) -> None:
    """Wait until this address is admitted again (a flood's second is over)."""
    anonymous = service.client()
    poll(lambda: anonymous.get("/index/v1/heartbeat").status_code == 401,
         what="the address limit to lift", interval=0.3)


@pytest.fixture
def quick(quick_index: IndexService) -> IndexService:
    """The quick service, once no earlier test's flood still limits this address."""
    calm(quick_index)
    return quick_index


class TestExpiry:
    def test_a_silent_peer_leaves_the_sources_after_its_ttl_and_a_beating_one_stays(
            self, quick: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        silent_id, beating_id = new_device(), new_device()
        silent = quick.client(quick.token(device=silent_id))
        beating = quick.client(quick.token(device=beating_id))
        asker = quick.client(quick.token())
        for agent in (silent, beating):
            answer = agent.post("/index/v1/announce", json=announce_body((work, FULL)))
            assert answer.json()["interval"] == 1  # a third of the 5 s timeout
        sources = f"/index/v1/works/{work}/sources"

        def listed() -> set[str]:
            return {s["peer_id"] for s in asker.get(sources).json()["sources"]}

        assert listed() == {silent_id, beating_id}
        deadline = time.monotonic() + 30
        while silent_id in listed():
            assert time.monotonic() < deadline, "the silent peer never expired"
            assert beating.post("/index/v1/heartbeat").status_code == 200
            time.sleep(0.5)
        assert beating.post("/index/v1/heartbeat").status_code == 200
        assert listed() == {beating_id}
        assert shared_redis.zscore(f"pmi:w:{work}", silent_id) is None  # swept on lookup
        late = silent.post("/index/v1/heartbeat")
        assert late.status_code == 409
        assert error(late)["code"] == "not_announced"
        assert silent.post("/index/v1/announce",
                           json=announce_body((work, FULL))).status_code == 200
        assert listed() == {silent_id, beating_id}


class TestFloods:
    def test_one_credential_flooding_is_told_to_retry_after_a_second(
            self, quick: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        agent = quick.client(quick.token())
        limited = None
        for _ in range(300):
            response = agent.get(f"/index/v1/works/{work}/sources")
            if response.status_code == 429:
                limited = response
                break
            assert response.status_code == 200
        assert limited is not None, "300 requests and never limited (limit: 5 a second)"
        assert limited.headers["Retry-After"] == "1"
        assert error(limited)["code"] == "rate_limited"
        poll(lambda: agent.get(f"/index/v1/works/{work}/sources").status_code == 200,
             what="the limit to lift", interval=0.3)

    def test_one_address_flooding_with_many_credentials_is_limited(
            self, quick: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        tokens = [quick.token() for _ in range(250)]
        uses = [0] * len(tokens)
        http = quick.client()  # one connection, a different credential each request
        limited = None
        for turn in range(1000):  # each credential used at most 4 times: under its limit
            index = turn % len(tokens)
            uses[index] += 1
            response = http.get(f"/index/v1/works/{work}/sources",
                                headers={"Authorization": f"Bearer {tokens[index]}"})
            if response.status_code == 429:
                limited = response
                break
            assert response.status_code == 200
        assert limited is not None, "never limited (limit: 25 a second from one address)"
        assert max(uses) <= 4
        assert limited.headers["Retry-After"] == "1"
        assert error(limited)["code"] == "rate_limited"
        # unauthenticated requests count too: an anonymous flood is limited, not just refused
        anonymous = quick.client()
        statuses = {anonymous.get("/index/v1/heartbeat").status_code for _ in range(200)}
        assert 429 in statuses


class TestAnnouncedHosts:
    def test_where_allowed_an_announced_host_is_the_peers_endpoint(
            self, quick: IndexService, shared_redis: redis.Redis) -> None:
        work = on_sale(shared_redis)
        agent = quick.client(quick.token())
        for host, url in (("198.51.100.7", "http://198.51.100.7:7000"),
                          ("peer.example.test", "http://peer.example.test:7000")):
            response = agent.post("/index/v1/announce",
                                  json=announce_body((work, FULL), host=host))
            assert response.status_code == 200, response.text
            assert response.json()["url"] == url
        bad = agent.post("/index/v1/announce", json=announce_body((work, FULL), host="a b"))
        assert bad.status_code == 400
        assert error(bad)["fields"] == {"host": [error(bad)["message"]]}


# --- Redis gone ---------------------------------------------------------------------------


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert error(response)["code"] == "index_unavailable"


def test_redis_gone_is_a_clear_503_and_the_index_recovers_when_it_returns(
        own_redis: Any, tmp_path: Path) -> None:
    server: RedisServer = own_redis(appendonly=False)
    work = new_work()
    store.works_put(server.conn(), {work: store.WorkEntry(PIECES)})
    with index_service(tmp_path / "index.log", redis_url=server.url) as service:
        agent = service.client(service.token())
        assert agent.post("/index/v1/announce",
                          json=announce_body((work, FULL))).status_code == 200
        server.kill()
        for response in (agent.get(f"/index/v1/works/{work}/sources"),
                         agent.post("/index/v1/announce", json=announce_body((work, FULL))),
                         agent.post("/index/v1/heartbeat"),
                         agent.get("/index/v1/announce", params={"work": work, "port": "1"}),
                         service.client().get("/index/v1/health")):
            _unavailable(response)

        # back (empty: no persistence here), and the platform publishes its catalogue again
        server.start()
        poll(lambda: service.client().get("/index/v1/health").status_code == 200,
             what="the index to reconnect")
        store.works_put(server.conn(), {work: store.WorkEntry(PIECES)})
        poll(lambda: agent.post("/index/v1/announce",
                                json=announce_body((work, FULL))).status_code == 200,
             what="an announce to be taken again")
        body = service.client(service.token()).get(f"/index/v1/works/{work}/sources").json()
        assert len(body["sources"]) == 1


def test_a_stalled_redis_is_a_clear_503_not_a_hung_request(own_redis: Any,
                                                            tmp_path: Path) -> None:
    """Redis there but answering nothing (SIGSTOP: a stuck server, a full disk under
    ``appendfsync always``): link.py promises to drop a connection whose reply is
    ``STALL_SECONDS`` (2 s) overdue, so a request is answered 503 within a few seconds."""
    server: RedisServer = own_redis(appendonly=False)
    work = new_work()
    store.works_put(server.conn(), {work: store.WorkEntry(PIECES)})
    with index_service(tmp_path / "index.log", redis_url=server.url) as service:
        agent = service.client(service.token())
        assert agent.get(f"/index/v1/works/{work}/sources").status_code == 200
        server.pause()
        try:
            _unavailable(agent.get(f"/index/v1/works/{work}/sources", timeout=10))
        finally:
            server.resume()
        poll(lambda: agent.get(f"/index/v1/works/{work}/sources").status_code == 200,
             what="the index to answer again after the stall")


def test_a_command_redis_refuses_inside_an_announce_is_a_503_not_a_success(
        index: IndexService, shared_redis: redis.Redis) -> None:
    """EXEC runs every queued command and reports each: one refused (here ZADD on a key
    someone left as a string) must fail the announce, not pass as done."""
    work, other = on_sale(shared_redis), on_sale(shared_redis)
    shared_redis.set(f"pmi:w:{work}", "not a sorted set")
    try:
        agent = index.client(index.token())
        _unavailable(agent.post("/index/v1/announce",
                                json=announce_body((other, FULL), (work, FULL))))
        ok = agent.post("/index/v1/announce", json=announce_body((other, FULL)))
        assert ok.status_code == 200, ok.text
    finally:
        shared_redis.delete(f"pmi:w:{work}")
