"""The serving peer: a valid order is served and recorded; everything else is refused.

Real aiohttp servers on loopback; the licence and order are checked offline with the
licensing core at the sale's fixed instant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.download import Source
from agent.store import PieceStore
from agent.wire import LICENCE_HEADER, ORDER_HEADER, piece_url
from licensing.core import RevocationList, read_piece, read_revocation_list, sign_order
from licensing.core.bitfield import bitfield_decode
from licensing.core.kinds import DocumentKind
from tests.agent.support import Seeder, downloader, seeders, start_seeder
from tests.licensing.core_support import DAY, NOW, Sale, forge


def order_for(sale: Sale, seeder: Seeder, index: int, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "licence_id": sale.licence.licence_id,
        "peer_id": seeder.peer_id,
        "piece": index,
        "byte_count": sale.manifest.piece_length(index),
        "issued_at": NOW,
    }
    device = changes.pop("device", sale.bob)
    fields.update(changes)
    return sign_order(device, **fields)


async def get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | None, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        body = await response.read()
        document = await response.json() if response.content_type == "application/json" else None
        return response.status, document, body


def test_a_valid_order_is_served_and_recorded(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path)
        try:
            token = order_for(sale, seeder, 3)
            status, _, body = await get(
                piece_url(seeder.url, sale.manifest.work_id, 3),
                {LICENCE_HEADER: sale.licence_token, ORDER_HEADER: token},
            )
        finally:
            await seeder.server.stop()
        assert status == 200
        assert body == read_piece(sale.packaged.ciphertext_path, sale.manifest, 3)
        [recorded] = seeder.outbox.pending(10)
        assert recorded.token == token
        assert (recorded.piece, recorded.byte_count) == (3, sale.manifest.piece_length(3))
        assert recorded.licence_id == sale.licence.licence_id

    asyncio.run(scenario())


def revoked(sale: Sale) -> RevocationList:
    token = sale.revocation_list(version=2, licences=[sale.licence.licence_id])
    return read_revocation_list(token, keyring=sale.agent_ring, now=NOW)


def stale(sale: Sale) -> RevocationList:
    token = sale.revocation_list(version=2, issued_at=NOW - 3 * DAY, next_update=NOW - DAY)
    return read_revocation_list(token, keyring=sale.agent_ring, now=NOW - 2 * DAY)


def forged_signature(sale: Sale, seeder: Seeder) -> str:
    """Bob's device id in the header, but signed with Carol's key."""
    header = {"alg": "Ed25519", "kid": sale.bob.device_id, "typ": DocumentKind.ORDER.typ}
    claims = {
        "lic": sale.licence.licence_id,
        "peer": seeder.peer_id,
        "piece": 0,
        "bytes": sale.manifest.piece_length(0),
        "nonce": "AAAAAAAAAAAAAAAAAAAAAA",
        "iat": NOW,
    }
    return forge(header, claims, sale.carol_signing_key)


Case = Callable[[Sale, Seeder], tuple[str, dict[str, str]]]


def piece_request(index: int, **changes: Any) -> Case:
    def build(sale: Sale, seeder: Seeder) -> tuple[str, dict[str, str]]:
        headers = {
            LICENCE_HEADER: sale.licence_token,
            ORDER_HEADER: order_for(sale, seeder, index, **changes),
        }
        return piece_url(seeder.url, sale.manifest.work_id, index), headers

    return build


def with_headers(index: int, make: Callable[[Sale, Seeder], dict[str, str]]) -> Case:
    def build(sale: Sale, seeder: Seeder) -> tuple[str, dict[str, str]]:
        return piece_url(seeder.url, sale.manifest.work_id, index), make(sale, seeder)

    return build


REFUSALS: dict[str, tuple[Case, int, str, dict[str, Any]]] = {
    "an order signed by another device": (
        with_headers(
            0,
            lambda sale, seeder: {
                LICENCE_HEADER: sale.licence_token,
                ORDER_HEADER: order_for(sale, seeder, 0, device=sale.carol),
            },
        ),
        403, "wrong-device", {},
    ),
    "an order with a forged signature": (
        with_headers(
            0,
            lambda sale, seeder: {
                LICENCE_HEADER: sale.licence_token,
                ORDER_HEADER: forged_signature(sale, seeder),
            },
        ),
        401, "bad-signature", {},
    ),
    "an order addressed to another peer": (
        piece_request(0, peer_id="someone-else"), 403, "wrong-peer", {},
    ),
    "an order for another piece than the path's": (
        with_headers(
            2,
            lambda sale, seeder: {
                LICENCE_HEADER: sale.licence_token,
                ORDER_HEADER: order_for(sale, seeder, 1),
            },
        ),
        403, "mismatch", {},
    ),
    "an order outside its time window": (
        piece_request(0, issued_at=NOW - 3600), 401, "expired", {},
    ),
    "a malformed order": (
        with_headers(
            0, lambda sale, seeder: {LICENCE_HEADER: sale.licence_token, ORDER_HEADER: "abc"}
        ),
        400, "malformed-document", {},
    ),
    "no licence": (
        with_headers(0, lambda sale, seeder: {ORDER_HEADER: order_for(sale, seeder, 0)}),
        401, "licence-missing", {},
    ),
    "no order": (
        with_headers(0, lambda sale, seeder: {LICENCE_HEADER: sale.licence_token}),
        401, "order-missing", {},
    ),
    "a revoked licence": (piece_request(0), 403, "revoked", {"revocations": revoked}),
    "an expired licence": (
        with_headers(
            0,
            lambda sale, seeder: {
                LICENCE_HEADER: sale.issue(issued_at=NOW - 10 * DAY, expires_at=NOW - 2 * DAY),
                ORDER_HEADER: order_for(sale, seeder, 0),
            },
        ),
        401, "expired", {},
    ),
    "a stale revocation list": (
        piece_request(0), 503, "revocations-stale", {"revocations": stale},
    ),
    "a piece out of range": (
        with_headers(
            13,
            lambda sale, seeder: {
                LICENCE_HEADER: sale.licence_token,
                ORDER_HEADER: order_for(sale, seeder, 0),
            },
        ),
        404, "piece-out-of-range", {},
    ),
    "a piece this peer does not hold": (
        piece_request(5), 404, "piece-not-held", {"pieces": [0, 1, 2]},
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_it_refuses_and_records_nothing(sale: Sale, tmp_path: Path, case: str) -> None:
    build, expected_status, expected_code, options = REFUSALS[case]
    if "revocations" in options:
        make = options["revocations"]
        options = {**options, "revocations": lambda: make(sale)}

    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path, **options)
        try:
            url, headers = build(sale, seeder)
            status, document, _ = await get(url, headers)
        finally:
            await seeder.server.stop()
        assert (status, document and document["error"]["code"]) == (
            expected_status, expected_code
        ), document
        assert seeder.outbox.count_pending() == 0

    asyncio.run(scenario())


def test_a_replayed_order_is_refused_and_recorded_once(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path)
        try:
            url = piece_url(seeder.url, sale.manifest.work_id, 4)
            headers = {LICENCE_HEADER: sale.licence_token, ORDER_HEADER: order_for(sale, seeder, 4)}
            first, _, _ = await get(url, headers)
            second, document, _ = await get(url, headers)
        finally:
            await seeder.server.stop()
        assert first == 200
        assert second == 409
        assert document is not None
        assert document["error"]["code"] == "replayed"
        assert seeder.outbox.count_pending() == 1

    asyncio.run(scenario())


def test_an_unknown_work_is_not_found(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path)
        try:
            status, document, _ = await get(piece_url(seeder.url, "another-work", 0))
            route_status, route_document, _ = await get(seeder.url + "/nowhere")
        finally:
            await seeder.server.stop()
        assert (status, document and document["error"]["code"]) == (404, "unknown-work")
        assert (route_status, route_document and route_document["error"]["code"]) == (
            404, "not-found",
        )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",
        b"GET /v1/status HTTP/1.1\r\nX-Peermark-Licence: " + b"a" * 40_000 + b"\r\n\r\n",
        b"\r\n\r\n\r\n\x00\x00\x00\r\n\r\n",
    ],
    ids=["tls-hello", "negative-length", "huge-line", "huge-header", "nul-bytes"],
)
def test_garbage_http_is_refused_and_the_server_keeps_serving(
    sale: Sale, tmp_path: Path, garbage: bytes
) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", seeder.server.port)
            writer.write(garbage)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            status, _, _ = await get(
                piece_url(seeder.url, sale.manifest.work_id, 0),
                {LICENCE_HEADER: sale.licence_token, ORDER_HEADER: order_for(sale, seeder, 0)},
            )
        finally:
            await seeder.server.stop()
        assert answer[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4") or answer == b"", answer[:80]
        assert status == 200
        assert seeder.outbox.count_pending() == 1

    asyncio.run(scenario())


def test_status_says_who_the_peer_is_and_what_it_holds(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path, pieces=[0, 7])
        try:
            status, document, _ = await get(seeder.url + "/v1/status")
        finally:
            await seeder.server.stop()
        assert status == 200
        assert document is not None
        assert document["peer_id"] == seeder.peer_id
        [work] = document["works"]
        assert (work["work_id"], work["pieces"], work["pieces_held"]) == (
            sale.manifest.work_id, 13, 2,
        )
        assert bitfield_decode(work["bitfield"], 13) == seeder.work.bitfield()

    asyncio.run(scenario())


def test_the_upload_cap_holds_within_ten_percent(sale: Sale, tmp_path: Path) -> None:
    cap = 2_000_000  # bytes per second: the 3 MiB work takes about 1.6 s

    async def scenario() -> float:
        async with seeders(sale, tmp_path, [None], upload_limit_bps=cap) as [seeder]:
            work = PieceStore(tmp_path / "buyer").add_verified(sale.manifest, sale.manifest_token)
            started = time.monotonic()
            result = await downloader(
                sale, work, sources=[Source(seeder.peer_id, seeder.url)]
            ).run()
            elapsed = time.monotonic() - started
            assert result.bytes_fetched == sale.manifest.ciphertext_size
            return result.bytes_fetched / elapsed

    rate = asyncio.run(scenario())
    assert 0.9 * cap <= rate <= 1.1 * cap, rate


def test_a_request_that_would_wait_too_long_behind_the_cap_is_shed(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path, upload_limit_bps=100_000, max_upload_wait=1.0)
        try:
            url = piece_url(seeder.url, sale.manifest.work_id, 0)
            headers = {LICENCE_HEADER: sale.licence_token, ORDER_HEADER: order_for(sale, seeder, 0)}
            status, document, _ = await get(url, headers)
        finally:
            await seeder.server.stop()
        assert status == 429
        assert document is not None
        assert document["error"]["code"] == "busy"
        assert seeder.outbox.count_pending() == 0

    asyncio.run(scenario())
