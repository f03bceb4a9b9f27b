"""A lookup's choice among many seeders, and its sweep of silent holders, against Redis."""

from __future__ import annotations

import time

import redis

from peerindex import store
from peerindex.lookup import fetch_for, lookup, run_sync
from tests.index.conftest import new_device, new_work

PIECES = 16


def _seed(conn: redis.Redis, work: str, count: int) -> list[str]:
    devices = [new_device() for _ in range(count)]
    store.works_put(conn, {work: store.WorkEntry(PIECES)})
    for index, device in enumerate(devices):
        store.announce(conn, device=device, user=index, host=f"10.{index // 250}.{index % 250}.1",
                       port=7000, version="", held=[store.Held(work, PIECES, "")],
                       replace=False, now=int(time.time()), peer_ttl=600)
    return devices


def test_every_seeder_is_handed_out_when_there_are_more_than_a_lookup_reads(
        shared_redis: redis.Redis) -> None:
    work = new_work()
    devices = _seed(shared_redis, work, 200)
    fetch = fetch_for(10)  # 18: each lookup reads 18 of the 200, from where rng says
    offsets = range(200 - fetch + 1)
    seen: set[bytes] = set()
    for offset in offsets:
        found = run_sync(shared_redis, lookup(work, pieces=PIECES, want=10,
                                              rng=lambda _bound, at=offset: at))
        assert len(found) == fetch
        seen |= {candidate[5].split(b"\x1f")[2] for candidate in found}
    assert len(seen) == len(devices)  # all 200, where a fixed start gave the same 18


def test_a_silent_holder_is_swept_but_one_that_came_back_is_kept(
        shared_redis: redis.Redis) -> None:
    work = new_work()
    silent, back, live = _seed(shared_redis, work, 3)
    shared_redis.delete(f"pmi:p:{silent}", f"pmi:p:{back}")
    steps = lookup(work, pieces=PIECES, want=10)
    commands = next(steps)  # ZCOUNT and the first holders
    pipe = shared_redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    commands = steps.send(pipe.execute())  # MGET: two are silent
    pipe = shared_redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    replies = pipe.execute()
    # `back` announces again between the lookup's read and its sweep
    store.announce(shared_redis, device=back, user=1, host="10.9.9.1", port=7000, version="",
                   held=[store.Held(work, PIECES, "")], replace=False,
                   now=int(time.time()), peer_ttl=600)
    sweep = steps.send(replies)
    assert sweep[0][0] == "EVAL"
    shared_redis.execute_command(*sweep[0])
    holders = {m.decode() for m in shared_redis.zrange(f"pmi:w:{work}", 0, -1)}
    assert holders == {back, live}


def test_partial_holders_are_found_with_their_own_bitfields(
        shared_redis: redis.Redis) -> None:
    """Each partial holder's bitfield comes from its own hash, matched to the right holder
    among seeders and a silent partial holder (swept, not answered)."""
    work = new_work()
    seeders = _seed(shared_redis, work, 2)
    # 16 pieces, two bytes, by hand: 0x80 0x00 is piece 0; 0xF0 0x01 pieces 0-3 and 15;
    # 0x00 0x01 piece 15
    partial = {new_device(): ("gAA=", 1), new_device(): ("8AE=", 5),
               new_device(): ("AAE=", 1)}
    silent = list(partial)[-1]
    for index, (device, (bits, have)) in enumerate(partial.items()):
        store.announce(shared_redis, device=device, user=100 + index,
                       host=f"10.50.{index}.1", port=7000, version="",
                       held=[store.Held(work, have, bits)], replace=False,
                       now=int(time.time()), peer_ttl=600)
    shared_redis.delete(f"pmi:p:{silent}")
    found = run_sync(shared_redis, lookup(work, pieces=PIECES, want=10))
    got = {c[6].decode(): (c[4].decode(), c[0]) for c in found}
    expected = dict.fromkeys(seeders, ("", PIECES))
    expected.update({d: v for d, v in partial.items() if d != silent})
    assert got == expected
    assert shared_redis.zscore(f"pmi:w:{work}", silent) is None  # swept
