"""The works on sale, as this process knows them: read from Redis on first use, then
remembered until the platform says the catalogue changed (its generation counter, polled
every second). A lookup of a work the platform withdrew is refused within a second."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from licensing.core.bitfield import bitfield_full
from peerindex import schema
from peerindex.link import Link
from peerindex.store import WorkEntry

#: "not remembered": a marker no real entry equals (no work has -1 pieces)
UNKNOWN = WorkEntry(-1)


class Catalogue:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.generation: bytes | None = None
        self._works: dict[str, WorkEntry | None] = {}
        self._full: dict[int, bytes] = {}

    def remembered(self, work: str) -> WorkEntry | None:
        """The entry if this process knows it (None: known not on sale), else ``UNKNOWN``
        (then ``get`` asks Redis): no coroutine for the usual case."""
        return self._works.get(work, UNKNOWN)

    async def get(self, work: str) -> WorkEntry | None:
        try:
            return self._works[work]
        except KeyError:
            pass
        return (await self.learn([work]))[work]

    async def learn(self, works: Iterable[str]) -> dict[str, WorkEntry | None]:
        """Read the works this process does not know, all in one round trip (a batched
        announce after the catalogue changed, when every process forgets it all, names
        up to a thousand); what was read."""
        known = self._works
        missing = [work for work in dict.fromkeys(works) if work not in known]
        if not missing:
            return {}
        raws = await self.link.call("HMGET", schema.WORKS, *missing)
        read = {work: None if raw is None else WorkEntry.decode(raw)
                for work, raw in zip(missing, raws, strict=True)}
        if len(known) > 500_000:
            known.clear()
        # Kept in the memory of the generation it was read under (a change meanwhile
        # has replaced that memory: the next use reads again).
        known.update(read)
        return read

    def changed(self, generation: bytes | None) -> None:
        if generation != self.generation:
            self.generation = generation
            self._works = {}

    def full_bitfield(self, pieces: int) -> bytes:
        """The base64 bitfield of every piece, which the index does not store."""
        found = self._full.get(pieces)
        if found is None:
            found = self._full[pieces] = base64.b64encode(bitfield_full(pieces))
        return found
