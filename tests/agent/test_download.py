"""The downloader: many sources at once, every piece verified, bad and silent sources dropped.

Seeders are real aiohttp servers on loopback running the agent's own server; the bad
ones are small handlers (or raw TCP) that misbehave in one way each.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from agent.download import DownloadResult, NoSourceError, Progress, Source
from agent.server import start_server
from agent.store import PieceStore, WorkStore
from licensing.core import read_piece
from tests.agent.support import (
    decrypted,
    downloader,
    seeders,
    start_fake_peer,
    start_raw_peer,
)
from tests.licensing.core_support import Sale

ALL = None  # a seeder holding every piece


def buyer_work(sale: Sale, tmp_path: Path) -> WorkStore:
    return PieceStore(tmp_path / "buyer").add_verified(sale.manifest, sale.manifest_token)


def piece_bytes(sale: Sale, index: int) -> bytes:
    return read_piece(sale.packaged.ciphertext_path, sale.manifest, index)


async def beside_a_good_seeder(
    sale: Sale, tmp_path: Path, other: Source
) -> tuple[DownloadResult, WorkStore, str]:
    """Download from ``other`` and a seeder holding everything; the good seeder's id."""
    async with seeders(sale, tmp_path, [ALL]) as [good]:
        work = buyer_work(sale, tmp_path)
        result = await downloader(sale, work, sources=[other, good.source()]).run()
    return result, work, good.peer_id


def test_it_downloads_from_three_seeders_holding_different_subsets(
    sale: Sale, tmp_path: Path
) -> None:
    holdings = [range(6), range(4, 10), range(8, 13)]

    async def scenario() -> None:
        async with seeders(sale, tmp_path, list(holdings)) as swarm:
            work = buyer_work(sale, tmp_path)
            seen: list[Progress] = []
            result = await downloader(
                sale, work, sources=[s.source() for s in swarm], progress=seen.append
            ).run()

            assert work.complete
            assert decrypted(sale, work) == sale.master
            assert sorted(result.pieces_fetched) == list(range(13))
            assert set(result.bytes_by_peer) == {s.peer_id for s in swarm}
            assert sum(result.bytes_by_peer.values()) == sale.manifest.ciphertext_size
            assert result.web_seed_bytes == 0
            assert result.dropped == []
            for seeder in swarm:
                # each peer's verified bytes are backed by orders it recorded
                recorded = sum(p.byte_count for p in seeder.outbox.pending(100))
                assert 0 < result.bytes_by_peer[seeder.peer_id] <= recorded
            assert seen[-1] == Progress(
                bytes_done=sale.manifest.ciphertext_size,
                bytes_total=sale.manifest.ciphertext_size,
                pieces_done=13,
                pieces_total=13,
            )

    asyncio.run(scenario())


def test_it_keeps_four_connections_busy_on_a_single_source(sale: Sale, tmp_path: Path) -> None:
    state = {"now": 0, "most": 0}

    async def slow_but_right(request: web.Request, index: int) -> web.StreamResponse:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.05)
        state["now"] -= 1
        return web.Response(body=piece_bytes(sale, index))

    async def scenario() -> None:
        fake = await start_fake_peer(slow_but_right)
        try:
            work = buyer_work(sale, tmp_path)
            await downloader(sale, work, sources=[Source(fake.peer_id, fake.url)]).run()
        finally:
            await fake.server.stop()
        assert work.complete

    asyncio.run(scenario())
    assert state["most"] == 4


def test_a_seeder_serving_corrupted_pieces_is_dropped_and_the_file_is_still_right(
    sale: Sale, tmp_path: Path
) -> None:
    async def corrupt(request: web.Request, index: int) -> web.StreamResponse:
        data = bytearray(piece_bytes(sale, index))
        data[100] ^= 0x55
        return web.Response(body=bytes(data))

    async def scenario() -> None:
        fake = await start_fake_peer(corrupt)
        try:
            result, work, good_id = await beside_a_good_seeder(
                sale, tmp_path, Source(fake.peer_id, fake.url))
        finally:
            await fake.server.stop()
        assert decrypted(sale, work) == sale.master
        [dropped] = result.dropped
        assert dropped.source == fake.peer_id
        assert "bad piece" in dropped.reason
        assert set(result.bytes_by_peer) == {good_id}
        assert fake.requests  # it was asked, and its pieces were fetched again elsewhere

    asyncio.run(scenario())


def test_a_silent_seeder_is_dropped_as_stalled_and_its_pieces_reassigned(
    sale: Sale, tmp_path: Path
) -> None:
    async def silent(request: web.Request, index: int) -> web.StreamResponse:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    async def scenario() -> None:
        fake = await start_fake_peer(silent)
        try:
            # The good seeder is capped so that the download outlasts the stall timeout.
            async with seeders(sale, tmp_path, [ALL], upload_limit_bps=3_000_000) as [good]:
                work = buyer_work(sale, tmp_path)
                # the silent source answers after 30 s: a download that waited for it
                # instead of dropping it would not end within this bound
                async with asyncio.timeout(25):
                    result = await downloader(
                        sale,
                        work,
                        sources=[Source(fake.peer_id, fake.url), good.source()],
                        stall_timeout=0.4,
                    ).run()
        finally:
            await fake.server.stop()
        assert decrypted(sale, work) == sale.master
        assert [(d.source, d.reason) for d in result.dropped] == [
            (fake.peer_id, "stalled: silent for 0.4 s")
        ]
        assert fake.requests
        assert set(result.bytes_by_peer) == {good.peer_id}

    asyncio.run(scenario())


def _index_of(head: bytes) -> int:
    found = re.search(rb"^GET /v1/pieces/[^/]+/(\d+) ", head)
    assert found is not None
    return int(found.group(1))


BAD_SOURCES: dict[str, tuple[Callable[[Sale], Callable[[bytes], bytes]], str]] = {
    "truncated": (
        lambda sale: lambda head: (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
            % sale.manifest.piece_length(_index_of(head))
            + piece_bytes(sale, _index_of(head))[:1000]
        ),
        "truncated",
    ),
    "wrong-length": (
        lambda sale: lambda head: (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            + piece_bytes(sale, _index_of(head))[:1000]
        ),
        "announced 1000 bytes",
    ),
    "garbage-http": (lambda sale: lambda head: b"\x00\xffNOT HTTP AT ALL\r\n\r\n", "HTTP failure"),
    "hang-up": (lambda sale: lambda head: b"", "HTTP failure"),
    "error-status": (
        lambda sale: lambda head: (
            b'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 49\r\n'
            b'\r\n{"error": {"code": "revoked", "message": "nope"}}'
        ),
        "HTTP 403 revoked: nope",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_SOURCES))
def test_a_bad_source_is_dropped_and_the_download_completes_from_the_others(
    sale: Sale, tmp_path: Path, kind: str
) -> None:
    answer, reason = BAD_SOURCES[kind]

    async def scenario() -> None:
        bad = await start_raw_peer(answer(sale))
        try:
            result, work, good_id = await beside_a_good_seeder(
                sale, tmp_path, Source(bad.peer_id, bad.url))
        finally:
            await bad.stop()
        assert decrypted(sale, work) == sale.master
        [dropped] = result.dropped
        assert dropped.source == bad.peer_id
        assert reason in dropped.reason
        assert set(result.bytes_by_peer) == {good_id}

    asyncio.run(scenario())


async def start_web_seed(folder: Path) -> tuple[Callable[[], Awaitable[None]], str]:
    """A plain static file server (aiohttp's, with Range support)."""
    app = web.Application()
    app.router.add_static("/files", folder)
    server = await start_server(app)
    return server.stop, server.url + "/files/work.ciphertext"


def test_a_web_seed_mixes_with_peers_and_is_not_metered(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        stop, url = await start_web_seed(sale.packaged.ciphertext_path.parent)
        try:
            async with seeders(sale, tmp_path, [range(7)]) as [peer]:
                work = buyer_work(sale, tmp_path)
                result = await downloader(
                    sale, work, sources=[peer.source()], web_seeds=[url]
                ).run()
                orders = peer.outbox.pending(100)
        finally:
            await stop()
        assert decrypted(sale, work) == sale.master
        assert result.bytes_by_web_seed[url] > 0
        assert result.bytes_by_peer.get(peer.peer_id, 0) > 0
        assert result.bytes_fetched == sale.manifest.ciphertext_size
        # Every byte is credited once, to the peer or to the web seed; only the peer's are
        # backed by orders (an endgame duplicate may add an order the peer lost the race on).
        assert (result.bytes_by_peer[peer.peer_id] + result.bytes_by_web_seed[url]
                == sale.manifest.ciphertext_size)
        assert sum(o.byte_count for o in orders) >= result.bytes_by_peer[peer.peer_id]
        assert result.dropped == []

    asyncio.run(scenario())


def test_a_web_seed_that_redirects_is_followed(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        stop_files, url = await start_web_seed(sale.packaged.ciphertext_path.parent)

        async def moved(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(url)

        app = web.Application()
        app.router.add_get("/cdn/work", moved)
        redirector = await start_server(app)
        try:
            work = buyer_work(sale, tmp_path)
            result = await downloader(sale, work, web_seeds=[redirector.url + "/cdn/work"]).run()
        finally:
            await redirector.stop()
            await stop_files()
        assert decrypted(sale, work) == sale.master
        assert result.web_seed_bytes == sale.manifest.ciphertext_size

    asyncio.run(scenario())


def test_a_source_sending_a_chunked_body_is_dropped(sale: Sale, tmp_path: Path) -> None:
    async def chunked(request: web.Request, index: int) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(piece_bytes(sale, index))
        await response.write_eof()
        return response

    async def scenario() -> None:
        fake = await start_fake_peer(chunked)
        try:
            result, work, good_id = await beside_a_good_seeder(
                sale, tmp_path, Source(fake.peer_id, fake.url))
        finally:
            await fake.server.stop()
        assert decrypted(sale, work) == sale.master
        [dropped] = result.dropped
        assert "Content-Length" in dropped.reason
        assert set(result.bytes_by_peer) == {good_id}

    asyncio.run(scenario())


def test_resume_fetches_only_the_missing_pieces(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with seeders(sale, tmp_path, [ALL], upload_limit_bps=1_500_000) as [seeder]:
            work = buyer_work(sale, tmp_path)
            verified = asyncio.Event()
            count = {"n": 0}

            def progress(p: Progress) -> None:
                count["n"] += 1
                if count["n"] == 5:
                    verified.set()

            first = asyncio.create_task(
                downloader(sale, work, sources=[seeder.source()], progress=progress).run()
            )
            await verified.wait()
            first.cancel()  # the buyer is killed mid-transfer
            with pytest.raises(asyncio.CancelledError):
                await first

            work._drop_writer_lock()  # what the OS does when it ends a killed process
            # A new process opens the store from disk.
            reopened = PieceStore(tmp_path / "buyer").work(sale.manifest.work_id)
            missing = reopened.missing()
            held_before = reopened.held_count
            assert held_before >= 5  # every piece reported verified survived the kill
            assert len(missing) == 13 - held_before > 0
            result = await downloader(sale, reopened, sources=[seeder.source()]).run()

        assert sorted(result.pieces_fetched) == missing  # nothing held was fetched again
        assert result.bytes_fetched == sum(sale.manifest.piece_length(i) for i in missing)
        assert decrypted(sale, reopened) == sale.master

    asyncio.run(scenario())


def test_the_endgame_finishes_without_waiting_for_a_slow_source(
    sale: Sale, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def held_back(request: web.Request, index: int) -> web.StreamResponse:
        await release.wait()  # answers only once the download is over
        return web.Response(body=piece_bytes(sale, index))

    async def scenario() -> None:
        fake = await start_fake_peer(held_back)
        try:
            # Finishing at all proves it: the held-back source never answers in time, and
            # waiting for it would end in its drop as stalled (10 s), which is checked.
            async with asyncio.timeout(60):
                result, work, _good = await beside_a_good_seeder(
                    sale, tmp_path, Source(fake.peer_id, fake.url))
        finally:
            release.set()
            await fake.server.stop()
        assert decrypted(sale, work) == sale.master
        assert fake.requests  # the slow source was given pieces...
        assert result.endgame_requests >= len(fake.requests)  # ...that were duplicated
        assert result.dropped == []  # slow is not stalled: it is simply outrun

    asyncio.run(scenario())


def test_a_peer_without_a_piece_it_claimed_is_not_dropped(sale: Sale, tmp_path: Path) -> None:
    from licensing.core.bitfield import bitfield_from_indices

    async def scenario() -> None:
        async with seeders(sale, tmp_path, [range(4), ALL]) as [partial, full]:
            work = buyer_work(sale, tmp_path)
            # It claims exactly the pieces it lacks: every request to it is answered
            # "404 piece-not-held" (a stale bitfield), which must not count against it.
            lacking = range(4, sale.manifest.piece_count)
            wrong = Source(partial.peer_id, partial.url,
                           bitfield=bitfield_from_indices(lacking, sale.manifest.piece_count))
            result = await downloader(sale, work, sources=[wrong, full.source()]).run()
            ordered = partial.outbox.pending(100)
        assert decrypted(sale, work) == sale.master
        assert result.dropped == []
        assert ordered == []  # it served nothing: every answer was not-held
        assert set(result.bytes_by_peer) == {full.peer_id}

    asyncio.run(scenario())


def test_a_peer_with_an_unknown_bitfield_is_asked_and_serves_what_it_has(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with seeders(sale, tmp_path, [range(4), ALL]) as [partial, full]:
            work = buyer_work(sale, tmp_path)
            unknown = Source(partial.peer_id, partial.url, bitfield=None)  # "ask me anything"
            result = await downloader(sale, work, sources=[unknown, full.source()]).run()
        assert decrypted(sale, work) == sale.master
        assert result.dropped == []

    asyncio.run(scenario())


def test_it_stops_with_a_clear_error_when_no_source_holds_some_piece(
    sale: Sale, tmp_path: Path
) -> None:
    async def corrupt(request: web.Request, index: int) -> web.StreamResponse:
        return web.Response(body=bytes(sale.manifest.piece_length(index)))

    async def scenario() -> None:
        fake = await start_fake_peer(corrupt)
        try:
            async with seeders(sale, tmp_path, [range(9)]) as [partial]:
                work = buyer_work(sale, tmp_path)
                with pytest.raises(NoSourceError) as raised:
                    await downloader(
                        sale, work, sources=[partial.source(), Source(fake.peer_id, fake.url)]
                    ).run()
        finally:
            await fake.server.stop()
        error = raised.value
        assert error.missing == (9, 10, 11, 12)
        assert "no remaining source holds 4 missing piece(s) (9, 10, 11, 12)" in str(error)
        assert fake.peer_id in str(error)  # the reason it was dropped is named
        # what the live source held was still fetched, for a later run to resume from
        assert work.held() == list(range(9))
        assert sorted(error.result.pieces_fetched) == list(range(9))

    asyncio.run(scenario())


def test_the_download_cap_holds_within_ten_percent(sale: Sale, tmp_path: Path) -> None:
    cap = 2_000_000

    async def scenario() -> float:
        async with seeders(sale, tmp_path, [ALL, ALL]) as swarm:
            work = buyer_work(sale, tmp_path)
            started = time.monotonic()
            result = await downloader(
                sale, work, sources=[s.source() for s in swarm], rate_limit_bps=cap
            ).run()
            return result.bytes_fetched / (time.monotonic() - started)

    rate = asyncio.run(scenario())
    assert 0.9 * cap <= rate <= 1.1 * cap, rate


def test_a_source_with_a_malformed_url_is_dropped_and_the_rest_deliver(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with seeders(sale, tmp_path, [ALL]) as [good]:
            work = buyer_work(sale, tmp_path)
            broken = [Source("bad-port", "http://127.0.0.1:notaport"),
                      Source("bad-bracket", "http://[::1")]
            result = await downloader(sale, work, sources=[*broken, good.source()]).run()
        assert decrypted(sale, work) == sale.master
        assert {d.source for d in result.dropped} == {"bad-port", "bad-bracket"}
        assert all("not a valid URL" in d.reason for d in result.dropped)
        assert set(result.bytes_by_peer) == {good.peer_id}

    asyncio.run(scenario())


@pytest.mark.parametrize(("header", "rest"), [
    ("nan", 1.0), ("inf", 1.0), ("-5", 0.0), ("1e9", 30.0), ("soon", 1.0), ("2", 2.0),
])
def test_a_peers_retry_after_is_bounded(sale: Sale, tmp_path: Path, header: str,
                                        rest: float) -> None:
    from agent.download import MAX_BUSY_REST, _BusyError, _Endpoint

    assert rest <= MAX_BUSY_REST
    work = buyer_work(sale, tmp_path)
    with pytest.raises(_BusyError) as busy:
        downloader(sale, work, sources=[])._refuse(
            _Endpoint("http://127.0.0.1:9/x", is_peer=False), 0, 429, b"",
            {"Retry-After": header})
    assert busy.value.retry_after == rest


# -- smart ban: a bad piece is banned where it came from, the source stays usable --------


def corrupted_copy(sale: Sale, folder: Path, bad_pieces: list[int]) -> Path:
    """A mirror's copy of the ciphertext file with one byte flipped in each bad piece."""
    data = bytearray(sale.packaged.ciphertext_path.read_bytes())
    for index in bad_pieces:
        data[sale.manifest.piece_offset(index) + 7] ^= 0x01
    folder.mkdir(parents=True)
    (folder / "work.ciphertext").write_bytes(bytes(data))
    return folder


def test_one_bad_piece_on_every_mirror_still_completes_the_download(
    sale: Sale, tmp_path: Path
) -> None:
    # Three web seeds, each corrupt in a different piece: every piece has a good copy
    # somewhere, but no mirror is wholly good.
    corrupt = {0: [2], 1: [6], 2: [11]}

    async def scenario() -> None:
        mirrors = [
            await start_web_seed(corrupted_copy(sale, tmp_path / f"mirror{n}", bad))
            for n, bad in corrupt.items()
        ]
        try:
            work = buyer_work(sale, tmp_path)
            result = await downloader(sale, work, web_seeds=[url for _, url in mirrors]).run()
        finally:
            for stop, _ in mirrors:
                await stop()
        assert decrypted(sale, work) == sale.master
        assert result.dropped == []
        # Each ban names the mirror and the piece it has wrong, nothing else.
        urls = [url for _, url in mirrors]
        for ban in result.banned:
            assert ban.piece in corrupt[urls.index(ban.source)]
        assert result.bytes_fetched == sale.manifest.ciphertext_size

    asyncio.run(scenario())


def test_a_peer_whose_first_answer_is_bad_keeps_serving_its_other_pieces(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        fakes = []
        for _ in range(2):
            spoilt: list[int] = []

            async def first_one_bad(
                request: web.Request, index: int, spoilt: list[int] = spoilt
            ) -> web.StreamResponse:
                data = bytearray(piece_bytes(sale, index))
                if not spoilt:
                    spoilt.append(index)
                    data[0] ^= 0xFF
                return web.Response(body=bytes(data))

            fakes.append((await start_fake_peer(first_one_bad), spoilt))
        try:
            work = buyer_work(sale, tmp_path)
            result = await downloader(
                sale, work, sources=[Source(f.peer_id, f.url) for f, _ in fakes]
            ).run()
        finally:
            for fake, _ in fakes:
                await fake.server.stop()
        assert decrypted(sale, work) == sale.master
        assert result.dropped == []
        assert sorted((b.source, b.piece) for b in result.banned) == sorted(
            (fake.peer_id, spoilt[0]) for fake, spoilt in fakes
        )
        for fake, spoilt in fakes:
            # never asked again for the piece it spoilt, and it served others
            assert fake.requests.count(spoilt[0]) == 1
            assert result.bytes_by_peer[fake.peer_id] > 0

    asyncio.run(scenario())


def test_a_piece_bad_on_every_mirror_stops_with_that_piece_named(
    sale: Sale, tmp_path: Path
) -> None:
    async def scenario() -> None:
        mirrors = [
            await start_web_seed(corrupted_copy(sale, tmp_path / f"mirror{n}", [4]))
            for n in range(2)
        ]
        try:
            work = buyer_work(sale, tmp_path)
            with pytest.raises(NoSourceError) as raised:
                await downloader(sale, work, web_seeds=[url for _, url in mirrors]).run()
        finally:
            for stop, _ in mirrors:
                await stop()
        error = raised.value
        assert error.missing == (4,)
        assert "no remaining source holds 1 missing piece(s) (4)" in str(error)
        assert "dropped sources: none" in str(error)
        for _, url in mirrors:
            assert f"{url} sent piece 4 wrong" in str(error)
        assert error.result.dropped == []
        # everything else was fetched and kept, for a later run to resume from
        assert work.held() == [i for i in range(13) if i != 4]

    asyncio.run(scenario())


@pytest.mark.parametrize("options", [{"max_connections": 0}, {"connections_per_source": 0}])
def test_a_download_without_connections_is_refused(
    sale: Sale, tmp_path: Path, options: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="at least one connection"):
        downloader(sale, buyer_work(sale, tmp_path), web_seeds=["http://127.0.0.1:9/x"],
                   **options)
