"""What an index process remembers of the works on sale (peerindex/catalogue.py), against
a real Redis: the works a batched announce names are read together, and a read that
straddles a catalogue change is not kept under the new generation."""

from __future__ import annotations

import asyncio

import redis

from peerindex import store
from peerindex.catalogue import UNKNOWN, Catalogue
from peerindex.link import Link
from tests.conftest import index_redis_url
from tests.index.conftest import new_work


def test_unknown_works_are_read_in_one_round_trip_and_remembered(
        shared_redis: redis.Redis) -> None:
    first, second, withdrawn = new_work(), new_work(), new_work()
    store.works_put(shared_redis, {first: store.WorkEntry(8), second: store.WorkEntry(300)})

    async def scenario() -> None:
        link = Link(index_redis_url())
        calls: list[tuple[object, ...]] = []
        call = link.call

        async def counted(*args: str | bytes | int) -> object:
            calls.append(args)
            return await call(*args)

        link.call = counted  # type: ignore[method-assign]
        catalogue = Catalogue(link)
        try:
            read = await catalogue.learn([first, withdrawn, second, first])
            assert read == {first: store.WorkEntry(8), withdrawn: None,
                            second: store.WorkEntry(300)}
            assert [c[0] for c in calls] == ["HMGET"]
            assert catalogue.remembered(first) == store.WorkEntry(8)
            assert catalogue.remembered(withdrawn) is None  # known: not on sale
            assert await catalogue.learn([second, withdrawn]) == {}
            assert await catalogue.get(second) == store.WorkEntry(300)
            assert len(calls) == 1
        finally:
            link.close()

    asyncio.run(scenario())


def test_a_read_that_straddles_a_catalogue_change_is_answered_but_not_kept(
        shared_redis: redis.Redis) -> None:
    work = new_work()
    store.works_put(shared_redis, {work: store.WorkEntry(5)})

    async def scenario() -> None:
        link = Link(index_redis_url())
        catalogue = Catalogue(link)
        try:
            await link.call("PING")  # connected: the read below goes out at once
            catalogue.changed(b"1")
            reading = asyncio.ensure_future(catalogue.get(work))
            for _ in range(3):  # the read is out
                await asyncio.sleep(0)
            catalogue.changed(b"2")  # the platform changed the catalogue meanwhile
            assert await reading == store.WorkEntry(5)
            assert catalogue.remembered(work) is UNKNOWN  # read again under "2"
        finally:
            link.close()

    asyncio.run(scenario())
