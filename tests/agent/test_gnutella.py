"""The Gnutella fallback: Ping/Pong and Query/QueryHit flooding with TTL, hops and de-duplication.

Every node is a real agent server on loopback with ``POST /v1/gnutella``; no platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.gnutella import (
    GnutellaNode,
    Neighbour,
    holdings_from_store,
    sources_from_hits,
)
from agent.outbox import OrderOutbox
from agent.server import PieceServer, RunningServer, start_server
from agent.store import PieceStore
from licensing.core import DeviceKeys
from licensing.core.bitfield import bitfield_full
from tests.agent.support import decrypted, downloader, holder_store, now
from tests.licensing.core_support import WORK_ID, Sale

PIECES = 13


@dataclass
class Node:
    name: str
    gnutella: GnutellaNode
    server: RunningServer

    @property
    def neighbour(self) -> Neighbour:
        return Neighbour(peer_id=self.name, url=self.server.url)


async def start_node(
    folder: Path, name: str, *, holds: bool = False, store: PieceStore | None = None,
    hop_timeout: float = 2.0,
) -> Node:
    store = store or PieceStore(folder / name)

    def holdings(work_id: str) -> bytes | None:
        return bitfield_full(PIECES) if holds and work_id == WORK_ID else None

    node = GnutellaNode(
        peer_id=name, url="", holdings=holdings, works_shared=lambda: int(holds),
        hop_timeout=hop_timeout,
    )
    app = PieceServer(
        store=store,
        device_id=name,
        keyring_provider=lambda: pytest.fail("no piece is asked of a Gnutella-only node"),
        revocations_provider=lambda: pytest.fail("no piece is asked of a Gnutella-only node"),
        outbox=OrderOutbox(folder / f"{name}.outbox"),
        gnutella=node,
    ).app()
    server = await start_server(app)
    node.url = server.url
    return Node(name, node, server)


def link(a: Node, b: Node) -> None:
    a.gnutella.add_neighbour(b.neighbour)
    b.gnutella.add_neighbour(a.neighbour)


@contextlib.asynccontextmanager
async def network(
    folder: Path, names: Sequence[str], holders: set[str], **options: Any
) -> AsyncIterator[dict[str, Node]]:
    nodes: dict[str, Node] = {}
    try:
        for name in names:
            nodes[name] = await start_node(folder, name, holds=name in holders, **options)
        yield nodes
    finally:
        for node in nodes.values():
            await node.gnutella.close()
            await node.server.stop()


def line(nodes: dict[str, Node], names: Sequence[str]) -> None:
    for a, b in itertools.pairwise(names):
        link(nodes[a], nodes[b])


def test_a_query_with_ttl_4_finds_a_source_3_hops_away_and_not_one_5_hops_away(
    tmp_path: Path,
) -> None:
    # The buyer, then five agents in a line; a3 and a5 hold the work.
    names = ["buyer", "a1", "a2", "a3", "a4", "a5"]

    async def scenario() -> None:
        async with network(tmp_path, names, {"a3", "a5"}) as nodes:
            line(nodes, names)
            hits = await nodes["buyer"].gnutella.query(WORK_ID, ttl=4)
            reached = {name: nodes[name].gnutella.received for name in names}
            further = await nodes["buyer"].gnutella.query(WORK_ID, ttl=5)
            nothing = await nodes["buyer"].gnutella.query("another-work", ttl=5)

        assert [(h.peer_id, h.hops, h.url) for h in hits] == [
            ("a3", 3, nodes["a3"].server.url)
        ]
        assert [(h.peer_id, h.hops) for h in further] == [("a3", 3), ("a5", 5)]
        assert nothing == []
        # TTL 4 went exactly 4 hops: a4 heard it, a5 did not
        assert reached == {"buyer": 0, "a1": 1, "a2": 1, "a3": 1, "a4": 1, "a5": 0}

    asyncio.run(scenario())


def test_a_message_seen_twice_is_dropped_the_second_time(tmp_path: Path) -> None:
    # buyer -> (b, c) -> d: d hears the query along both paths.
    async def scenario() -> None:
        async with network(tmp_path, ["buyer", "b", "c", "d"], {"d"}) as nodes:
            link(nodes["buyer"], nodes["b"])
            link(nodes["buyer"], nodes["c"])
            link(nodes["b"], nodes["d"])
            link(nodes["c"], nodes["d"])
            hits = await nodes["buyer"].gnutella.query(WORK_ID, ttl=4)

        assert [(h.peer_id, h.hops) for h in hits] == [("d", 2)]
        d = nodes["d"].gnutella
        assert (d.received, d.duplicates) == (2, 1)
        # b and c each also heard it back from d (or each other) and dropped it
        assert sum(n.gnutella.duplicates for n in nodes.values()) >= 2

    asyncio.run(scenario())


def test_a_query_around_a_ring_terminates(tmp_path: Path) -> None:
    names = [f"r{i}" for i in range(6)]

    async def scenario() -> None:
        async with network(tmp_path, names, {"r3"}) as nodes:
            line(nodes, names)
            link(nodes["r5"], nodes["r0"])
            started = time.monotonic()
            hits = await nodes["r0"].gnutella.query(WORK_ID, ttl=7)
            elapsed = time.monotonic() - started

        assert [(h.peer_id, h.hops) for h in hits] == [("r3", 3)]
        assert elapsed < 2
        for name in names[1:]:
            node = nodes[name].gnutella
            assert node.received - node.duplicates == 1  # each node handled it once
        # the two waves met on the far side of the ring, and the later one was dropped
        assert sum(nodes[name].gnutella.duplicates for name in names) >= 1

    asyncio.run(scenario())


async def post(url: str, body: object) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/v1/gnutella", data=data, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        return response.status, await response.json()


def query(ttl: int, *, hops: int = 0, **changes: Any) -> dict[str, Any]:
    message = {
        "v": 1, "type": "query", "id": "ab" * 16, "ttl": ttl, "hops": hops,
        "from": "stranger", "work": WORK_ID,
    }
    message.update(changes)
    return message


def test_a_huge_ttl_is_clamped_to_seven_hops(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(1, 10)]  # n1 .. n9; n7 and n8 hold the work

    async def scenario() -> None:
        async with network(tmp_path, names, {"n7", "n8"}) as nodes:
            line(nodes, names)
            status, answer = await post(nodes["n1"].server.url, query(1_000_000))

        assert status == 200
        # n1 is 1 hop from the sender: n7 is 7 hops away, n8 would be 8.
        assert [(h["peer_id"], h["hops"]) for h in answer["hits"]] == [("n7", 7)]
        assert nodes["n8"].gnutella.received == 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2, 3]",
        b"[" * 30_000 + b"]" * 30_000,
        b'{"v": 1, "x": ' + b"{" * 17 + b"}" * 17 + b"}",
        query(-1),
        {**query(4), "ttl": True},
        query(4, hops=300),
        query(4, id="abc"),
        query(4, type="bye"),
        query(4, work=""),
        query(4, v=2),
        {**query(4), "extra": 1},
        {k: v for k, v in query(4).items() if k != "from"},
    ],
    ids=[
        "not-json", "not-an-object", "nested-30000-deep", "nested-past-the-limit",
        "negative-ttl", "boolean-ttl", "huge-hops", "short-id",
        "unknown-type", "empty-work", "other-version", "extra-field", "no-sender",
    ],
)
def test_a_malformed_message_is_refused(
    tmp_path: Path, body: object, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with network(tmp_path, ["n1", "n2"], {"n2"}) as nodes:
            link(nodes["n1"], nodes["n2"])
            status, answer = await post(nodes["n1"].server.url, body)
        assert status == 400
        assert answer["error"]["code"] == "malformed-request"
        assert nodes["n2"].gnutella.received == 0  # nothing was forwarded

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert [r for r in caplog.records if r.exc_info] == []  # refused, not crashed


def test_an_oversized_message_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with network(tmp_path, ["n1"], set()) as nodes:
            status, answer = await post(
                nodes["n1"].server.url, query(4, work="w" * 100_000)
            )
        assert status == 413
        assert answer["error"]["code"] == "request-too-large"

    asyncio.run(scenario())


def test_ping_discovers_the_peers_within_its_ttl(tmp_path: Path) -> None:
    names = ["me", "p1", "p2", "p3"]

    async def scenario() -> None:
        async with network(tmp_path, names, {"p2"}) as nodes:
            line(nodes, names)
            me = nodes["me"].gnutella
            pongs = await me.discover(ttl=2)

        assert [(p.peer_id, p.hops, p.works) for p in pongs] == [("p1", 1, 0), ("p2", 2, 1)]
        assert {n.peer_id for n in me.neighbours} == {"p1", "p2"}

    asyncio.run(scenario())


def test_a_neighbour_that_never_answers_costs_at_most_the_hop_deadline(tmp_path: Path) -> None:
    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/v1/gnutella", never)
        silent = await start_server(app)
        async with network(tmp_path, ["me", "p1"], {"p1"}, hop_timeout=0.3) as nodes:
            link(nodes["me"], nodes["p1"])
            nodes["me"].gnutella.add_neighbour(Neighbour("silent", silent.url))
            started = time.monotonic()
            hits = await nodes["me"].gnutella.query(WORK_ID, ttl=2)
            elapsed = time.monotonic() - started
        await silent.stop()
        assert [h.peer_id for h in hits] == ["p1"]
        assert elapsed < 0.3 * 2 + 0.5

    asyncio.run(scenario())


def test_a_hit_is_a_source_the_buyer_downloads_from_without_the_platform(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store, _ = holder_store(sale, tmp_path / "seeder-store")
        seeder_keys = DeviceKeys.generate()
        holder = GnutellaNode(
            peer_id=seeder_keys.device_id, url="", holdings=holdings_from_store(store)
        )
        app = PieceServer(
            store=store,
            device_id=seeder_keys.device_id,
            keyring_provider=lambda: sale.agent_ring,
            revocations_provider=lambda: sale.revocations,
            outbox=OrderOutbox(tmp_path / "seeder.outbox"),
            gnutella=holder,
            clock=now,
        ).app()
        server = await start_server(app)
        holder.url = server.url
        async with network(tmp_path, ["buyer", "relay"], set()) as nodes:
            link(nodes["buyer"], nodes["relay"])
            nodes["relay"].gnutella.add_neighbour(Neighbour(holder.peer_id, holder.url))
            hits = await nodes["buyer"].gnutella.query(WORK_ID, ttl=4)
            sources = sources_from_hits(hits, sale.manifest.piece_count)
            work = PieceStore(tmp_path / "buyer-store").add_verified(
                sale.manifest, sale.manifest_token
            )
            result = await downloader(sale, work, sources=sources).run()
        await holder.close()
        await server.stop()
        assert [s.peer_id for s in sources] == [seeder_keys.device_id]
        assert result.bytes_by_peer == {seeder_keys.device_id: sale.manifest.ciphertext_size}
        assert decrypted(sale, work) == sale.master

    asyncio.run(scenario())


@pytest.mark.parametrize("url", ["http://h:abc", "http://[::1", "http://:80", "ftp://h"])
def test_a_hit_or_pong_naming_an_unusable_url_is_ignored(url: str) -> None:
    from agent.gnutella import _parse_hit, _parse_pong

    peer = "p" * 43
    assert _parse_hit({"peer_id": peer, "url": url, "work": "w", "bitfield": "",
                       "hops": 1}, "w") is None
    assert _parse_pong({"peer_id": peer, "url": url, "works": 1, "hops": 1}) is None
    good = "http://127.0.0.1:7070"
    assert _parse_hit({"peer_id": peer, "url": good, "work": "w", "bitfield": "",
                       "hops": 1}, "w") is not None
