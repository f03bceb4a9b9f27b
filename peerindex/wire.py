"""An adding announce (``store.announce_commands``) written straight in Redis's wire
format, MULTI to EXEC, for the service's link.

A batched announce of 100 works is about 200 commands; packing each with
``hiredis.pack_command`` took a fifth of the service's time for it (py-spy, docs/INDEX.md).
Most of those bytes repeat: per work, the key, the ``EXPIRE`` command whole and the
command heads; per request, the device. They are packed once (per work, remembered) and
joined. ``tests/index/test_wire.py`` checks the bytes against hiredis packing
``announce_commands`` for the same announce.
"""

from __future__ import annotations

from collections.abc import Sequence

from peerindex import schema
from peerindex.records import peer_value
from peerindex.store import Held

#: works whose packed pieces are remembered; past it the older half is dropped
MAX_WORKS = 50_000


def bulk(value: bytes) -> bytes:
    """One argument as a RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _head(name: bytes, count: int) -> bytes:
    return b"*%d\r\n%b" % (count, bulk(name))


_MULTI, _EXEC = _head(b"MULTI", 1), _head(b"EXEC", 1)
_SMALL = [bulk(b"%d" % n) for n in range(4096)]


def _number(n: int) -> bytes:
    return _SMALL[n] if 0 <= n < 4096 else bulk(b"%d" % n)


class _Work:
    """One work's packed pieces: ZADD's and ZREM's heads with its holders key, the key's
    EXPIRE whole, and the work as a hash field."""

    __slots__ = ("expire_holders", "field", "zadd", "zrem")

    def __init__(self, work: str, ttl: bytes) -> None:
        holders = bulk((schema.HOLDERS + work).encode())
        self.zadd = _head(b"ZADD", 4) + holders
        self.zrem = _head(b"ZREM", 3) + holders
        self.expire_holders = _head(b"EXPIRE", 3) + holders + ttl
        self.field = bulk(work.encode())


class AnnounceWire:
    """Packs adding announces for one service process."""

    def __init__(self, holdings_ttl: int = schema.HOLDINGS_TTL) -> None:
        self._ttl = bulk(b"%d" % holdings_ttl)
        self._works: dict[str, _Work] = {}

    def __len__(self) -> int:
        """Works whose pieces are remembered."""
        return len(self._works)

    def _work(self, work: str) -> _Work:
        packed = self._works.get(work)
        if packed is None:
            if len(self._works) >= MAX_WORKS:
                for old in list(self._works)[: MAX_WORKS // 2]:
                    del self._works[old]
            packed = self._works[work] = _Work(work, self._ttl)
        return packed

    def announce(self, *, device: str, user: int, host: str, port: int, version: str,
                 held: Sequence[Held], now: int, peer_ttl: int) -> tuple[bytes, int]:
        """MULTI, the commands of ``store.announce_commands``, EXEC; and how many
        commands are between them."""
        dev = bulk(device.encode())
        value = peer_value(seen=now, user=user, host=host, port=port, version=version,
                           device=device)
        out = [_MULTI, _head(b"SET", 5), bulk(schema.PEER.encode() + device.encode()),
               bulk(value.encode()), bulk(b"EX"), _number(peer_ttl)]
        append = out.append
        commands = 1
        kept: list[bytes] = []  # the peer's works: one HSET for all, one HDEL
        gone: list[bytes] = []
        partial: list[bytes] = []  # its bitfields: one HSET, and one HDEL of those done
        unmapped: list[bytes] = []
        empty = bulk(b"")
        work_of = self._work
        for item in held:
            work = work_of(item.work)
            if not item.have:
                append(work.zrem + dev)
                commands += 1
                gone.append(work.field)
                unmapped.append(work.field)
                continue
            append(work.zadd + _number(item.have) + dev + work.expire_holders)
            commands += 2
            kept += (work.field, empty)
            if item.bitfield:
                partial += (work.field, bulk(item.bitfield.encode()))
            else:
                unmapped.append(work.field)
        ttl = self._ttl
        for prefix, dropped, written in ((schema.HELD, gone, kept),
                                         (schema.BITFIELDS, unmapped, partial)):
            key = bulk(prefix.encode() + device.encode())  # a hash of the peer's own
            if dropped:
                out += (_head(b"HDEL", 2 + len(dropped)), key, *dropped)
                commands += 1
            if written:
                out += (_head(b"HSET", 2 + len(written)), key, *written)
                commands += 1
            out += (_head(b"EXPIRE", 3), key, ttl)
        out += (_head(b"HINCRBY", 4), bulk(schema.DIRTY.encode()), dev, _SMALL[1], _EXEC)
        return b"".join(out), commands + 3
