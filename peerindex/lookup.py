"""A source lookup as plain Redis commands, written once for both drivers (the service's
shared link and the platform's redis-py): a generator that yields the commands of each
round trip and is sent their replies.

No Lua on the read, on purpose: measured with Redis's own command statistics, the same lookup
as a script cost 168 microseconds of Redis's one thread per call, against 57 for its
commands sent as they are (ZREVRANGE, MGET, and the partial holders' bitfields, then one
HMGET, now one HGET each from the holder's own hash); the interpreter, not the data, was
most of the cost. A lookup needs no atomicity: it reads; the holders it finds
silent it removes with a small script that checks each is still silent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from typing import Any

from peerindex import schema
from peerindex.records import Candidate

Command = tuple[Any, ...]
#: yields the commands of one round trip, is sent their replies, returns the candidates
Lookup = Generator[list[Command], list[Any], list[Candidate]]

_SEP = schema.SEP.encode()
_BITS = schema.BITFIELDS.encode()
MAX_ROUNDS = 16


def fetch_for(want: int) -> int:
    """Holders read per round: a few more than wanted, so choosing can spread them
    across networks."""
    return min(want + max(8, want // 4), 400)


# Silent holders out, each only if still silent: a peer that announced again between the
# lookup's read and this must stay (a heartbeat would not put it back).
# KEYS: holders. ARGV: devices. (A silent peer's own keys, its works and bitfields, expire
# on their own.)
SWEEP = """
for _, device in ipairs(ARGV) do
  if redis.call('EXISTS', '""" + schema.PEER + """' .. device) == 0 then
    redis.call('ZREM', KEYS[1], device)
  end
end
return 0
"""


def lookup(work: str, *, pieces: int, want: int, skip: bytes = b"",
           rng: Callable[[int], int] = random.randrange) -> Lookup:
    """Up to ``fetch_for(want)`` live holders of ``work``, most pieces first.

    Holders of every piece tie on the score, and Redis would order them by name, the same
    for every buyer: where there are more of them than a lookup reads, it starts at a
    place ``rng`` picks among them, so every seeder is handed out in turn.
    """
    holders, field = schema.holders_key(work), work.encode()
    fetch = fetch_for(want)
    found: list[Candidate] = []
    taken: set[bytes] = set()
    first: Command = ("ZREVRANGE", holders, 0, fetch - 1, "WITHSCORES")
    ranked: Any
    seeders, ranked = yield [("ZCOUNT", holders, pieces, "+inf"), first]
    start = rng(int(seeders) - fetch + 1) if int(seeders) > fetch else 0
    if start:  # read from there instead of the first ones, already at hand
        ranked = None
    wrapped = start == 0
    for _ in range(MAX_ROUNDS):
        if ranked is None:
            (ranked,) = yield [("ZREVRANGE", holders, start, start + fetch - 1, "WITHSCORES")]
        if ranked and isinstance(ranked[0], list | tuple):  # redis-py pairs them
            ranked = [item for pair in ranked for item in pair]
        members: Sequence[bytes] = ranked[0::2]
        scores = [int(float(s)) for s in ranked[1::2]]
        if members:
            partial = [m for m, s in zip(members, scores, strict=True) if s < pieces]
            commands: list[Command] = [("MGET", *[schema.PEER.encode() + m for m in members])]
            commands += [("HGET", _BITS + m, field) for m in partial]
            replies = yield commands
            bits = dict(zip(partial, replies[1:], strict=True))
            dead = []
            for member, have, value in zip(members, scores, replies[0], strict=True):
                if value is None:
                    dead.append(member)
                elif member != skip and member not in taken:
                    taken.add(member)
                    seen, network, fragment, _ = value.split(_SEP, 3)
                    found.append((have, seen, network, fragment, bits.get(member) or b"",
                                  value, member))
            if dead:  # the lookup is the sweeper
                yield [("EVAL", SWEEP, 1, holders, *dead)]
            start += len(members) - len(dead)
        ranked = None
        if len(found) >= fetch:
            break
        if len(members) < fetch:  # the end: from the top once, if not begun there
            if wrapped:
                break
            start, wrapped = 0, True
    return found


def run_sync(conn: Any, steps: Lookup) -> list[Candidate]:
    """Drive a lookup with redis-py (each round trip one pipeline)."""
    replies: list[Any] | None = None
    try:
        while True:
            commands = steps.send(replies) if replies is not None else next(steps)
            pipe = conn.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            replies = pipe.execute()
    except StopIteration as done:
        return list(done.value)
