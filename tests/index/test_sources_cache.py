"""The lookup answers a process remembers for a moment (``peerindex.sources_cache``): fresh
ones answer without a read, stale or smaller ones are read again, lookups that miss
together share one read, a failed read is not remembered, and the asker is never its own
source. Candidates are written by hand; the clock is a test's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from peerindex.records import Candidate
from peerindex.sources_cache import Holders, SourcesCache

FULL = b"/A=="  # 6 pieces, every one (0b11111100)


def candidate(device: str, *, have: int = 6, seen: int = 100, network: str = "10.0.1.0",
              bits: bytes = b"") -> Candidate:
    fragment = f'"peer_id":"{device}","url":"http://{network[:-1]}9:7000"'.encode()
    return (have, b"%010d" % seen, network.encode(), fragment, bits, b"(record)",
            device.encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(found: list[Candidate]) -> tuple[list[int], Callable[[], Awaitable[list[Candidate]]]]:
    calls = [0]

    async def load() -> list[Candidate]:
        calls[0] += 1
        await asyncio.sleep(0)
        return list(found)

    return calls, load


def test_a_fresh_answer_is_shared_and_a_stale_one_read_again() -> None:
    clock = Clock()
    cache = SourcesCache(1.0, clock=clock)
    calls, load = counting([candidate("a"), candidate("b", seen=200)])

    async def go() -> list[list[bytes]]:
        seen = []
        for step in (0.0, 0.5, 0.49, 0.02):  # at 0, 0.5 and 0.99 fresh; at 1.01 stale
            clock.now += step
            holders = await cache.read("w", 58, FULL, load)
            seen.append([c[6] for c in holders.found])
        return seen

    seen = asyncio.run(go())
    assert calls[0] == 2
    assert seen == [[b"b", b"a"]] * 4  # best first: the later heartbeat ranks higher


def test_a_read_of_fewer_holders_does_not_answer_a_lookup_that_wants_more() -> None:
    cache = SourcesCache(1.0, clock=Clock())
    calls, load = counting([candidate("a")])

    async def go() -> None:
        await cache.read("w", 18, FULL, load)
        await cache.read("w", 18, FULL, load)  # remembered
        await cache.read("w", 58, FULL, load)  # wants more: read again
        await cache.read("w", 18, FULL, load)  # the larger read answers the smaller

    asyncio.run(go())
    assert calls[0] == 2


def test_lookups_that_miss_together_share_one_read() -> None:
    cache = SourcesCache(1.0, clock=Clock())
    calls, load = counting([candidate("a")])

    async def go() -> list[Holders]:
        return list(await asyncio.gather(*[cache.read("w", 58, FULL, load) for _ in range(8)]))

    answers = asyncio.run(go())
    assert calls[0] == 1
    assert all(a is answers[0] for a in answers)


def test_a_failed_read_reaches_every_waiter_and_is_not_remembered() -> None:
    cache = SourcesCache(1.0, clock=Clock())
    attempts = [0]

    async def failing() -> list[Candidate]:
        attempts[0] += 1
        await asyncio.sleep(0)
        raise ConnectionError("Redis went away")

    async def go() -> list[object]:
        return list(await asyncio.gather(*[cache.read("w", 58, FULL, failing)
                                           for _ in range(3)], return_exceptions=True))

    outcomes = asyncio.run(go())
    assert [type(o) for o in outcomes] == [ConnectionError] * 3
    assert attempts[0] == 1
    calls, load = counting([candidate("a")])
    holders = asyncio.run(cache.read("w", 58, FULL, load))  # read afresh, not the failure
    assert calls[0] == 1
    assert [c[6] for c in holders.found] == [b"a"]


def test_switched_off_every_lookup_reads() -> None:
    cache = SourcesCache(0, clock=Clock())
    calls, load = counting([candidate("a")])

    async def go() -> None:
        for _ in range(3):
            await cache.read("w", 58, FULL, load)

    asyncio.run(go())
    assert calls[0] == 3


def test_past_its_bound_the_cache_keeps_only_fresh_works() -> None:
    clock = Clock()
    cache = SourcesCache(1.0, max_works=3, clock=clock)
    calls, load = counting([candidate("a")])

    async def go() -> None:
        for work in ("w1", "w2"):
            await cache.read(work, 58, FULL, load)
        clock.now += 2  # both stale
        for work in ("w3", "w4", "w5"):  # w4 finds the bound reached: stale ones go
            await cache.read(work, 58, FULL, load)
        await cache.read("w3", 58, FULL, load)  # still remembered
        await cache.read("w1", 58, FULL, load)  # was dropped: read again

    asyncio.run(go())
    assert calls[0] == 6


def test_the_answer_never_names_the_asker_and_keeps_the_spread_by_hand() -> None:
    # a: 6 pieces in net 1; b: 6 pieces, older, net 1; c: 4 pieces in net 2
    c_bits = b"8A=="  # pieces 0, 1, 2 and 3 of 6
    holders = Holders(sorted([candidate("a", seen=300), candidate("b", seen=200),
                              candidate("c", have=4, network="10.0.2.0", bits=c_bits)],
                             reverse=True), FULL)
    # by hand: best of each network first (a, then c), then the rest (b)
    assert _ids(holders.sources_json(3)) == ["a", "c", "b"]
    assert _ids(holders.sources_json(2)) == ["a", "c"]
    # a asks: the best three without it
    assert _ids(holders.sources_json(2, skip=b"a")) == ["c", "b"]
    # someone else asks: as for a buyer
    assert _ids(holders.sources_json(2, skip=b"z")) == ["a", "c"]
    assert holders.sources_json(1) == (
        b'[{"peer_id":"a","url":"http://10.0.1.9:7000","bitfield":"/A==","have":6,'
        b'"last_seen":300}]')
    assert b'"bitfield":"8A==","have":4' in holders.sources_json(3)


def _ids(answer: bytes) -> list[str]:
    return [s["peer_id"] for s in json.loads(answer)]


@pytest.mark.parametrize("want", [1, 2, 3])
def test_the_remembered_answer_is_the_same_as_a_fresh_one(want: int) -> None:
    found = sorted([candidate("a", seen=300), candidate("b", seen=200),
                    candidate("c", have=4, network="10.0.2.0", bits=b"8A==")], reverse=True)
    holders = Holders(found, FULL)
    first = holders.sources_json(want)
    assert holders.sources_json(want) == first == Holders(list(found), FULL).sources_json(want)


def test_forgetting_drops_what_is_remembered_and_what_is_being_read() -> None:
    cache = SourcesCache(1.0, clock=Clock())
    calls, load = counting([candidate("a")])
    gate = asyncio.Event()

    async def slow() -> list[Candidate]:
        await gate.wait()
        return await load()

    async def go() -> None:
        await cache.read("w1", 58, FULL, load)
        reading = asyncio.ensure_future(cache.read("w2", 58, FULL, slow))
        await asyncio.sleep(0)
        cache.forget()  # the revocations changed, with w2's read in flight
        gate.set()
        await reading  # its asker still gets its answer
        await cache.read("w1", 58, FULL, load)  # forgotten: read again
        await cache.read("w2", 58, FULL, load)  # read before the change: not remembered

    asyncio.run(go())
    assert calls[0] == 4
