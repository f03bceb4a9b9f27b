"""The pure-P2P fallback: Gnutella 0.6 style discovery over the agents' own HTTP.

When the platform's index is out of reach, an agent finds peers with Ping/Pong from a
list of known peers, and sources of a work with Query/QueryHit flooding. A message is
JSON, ``POST``ed to a neighbour's ``/v1/gnutella``::

    {"v": 1, "type": "ping" | "query", "id": <32 hex digits: 16 random bytes>,
     "ttl": <int>, "hops": <int>, "from": <the sending node's peer id>,
     "work": <work id, queries only>}

Rules (docs/PROTOCOL.md, "Gnutella fallback"):

* A node refuses a malformed message (400), answers a message id it has already seen
  with ``{"duplicate": true}`` and nothing else (bounded, time-expiring memory), and
  clamps the TTL to ``max_ttl`` (7) and ``ttl + hops`` to ``max_ttl``.
* Otherwise it answers for itself (a Pong, or a QueryHit if it holds pieces of the
  work), and if ``ttl - 1 > 0`` forwards the message with ``ttl - 1`` and
  ``hops + 1`` to every neighbour except the sender, waiting at most
  ``hop_timeout * (ttl - 1)`` seconds for them: deeper nodes have shorter deadlines,
  so the originator's answer comes within ``hop_timeout * ttl``.
* Responses travel back along the reverse path: each node's HTTP response carries
  its own answer and everything its neighbours answered (bounded in count).

A query with TTL 4 thus reaches nodes up to 4 hops away. Nothing here is trusted
beyond trying it: a hit is a peer to ask, and that peer still checks the licence and
order of every request; the downloader still checks every piece.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from licensing.core.bitfield import BitfieldError, bitfield_count, bitfield_decode, bitfield_encode

from .download import Source
from .store import PieceStore
from .wire import GNUTELLA_PATH, STATUS_PATH, BodyError, parse_json_body

log = logging.getLogger(__name__)

GNUTELLA_VERSION = 1
MAX_TTL = 7
DEFAULT_QUERY_TTL = 4
DEFAULT_HOP_TIMEOUT = 2.0
DEFAULT_SEEN_SIZE = 10_000
DEFAULT_SEEN_SECONDS = 300.0
#: most answers one response may carry (the rest are dropped)
MAX_RESULTS = 200
#: the largest answer a node reads from a neighbour
MAX_RESPONSE_BODY = 8 << 20
_MESSAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_URL = re.compile(r"^https?://[\x21-\x7e]{1,2040}$")
_TYPES = ("ping", "query")


def _is_url(value: object) -> bool:
    """An http(s) URL whose host and port parse (a hit or pong names where to connect)."""
    if not isinstance(value, str) or not _URL.match(value):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return False
    return bool(parts.hostname)
_FIELDS = {"ping": {"v", "type", "id", "ttl", "hops", "from"}}
_FIELDS["query"] = _FIELDS["ping"] | {"work"}


class GnutellaError(ValueError):
    """A malformed message (answered with 400)."""


@dataclass(frozen=True)
class Neighbour:
    """A peer this node forwards messages to."""

    peer_id: str
    url: str


async def known_neighbours(urls: Iterable[str]) -> list[Neighbour]:
    """The known peers that answer now, each with the id it gives in its status."""
    found = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        for url in urls:
            base = url.rstrip("/")
            try:
                async with session.get(base + STATUS_PATH) as response:
                    status = await response.json()
                found.append(Neighbour(peer_id=str(status["peer_id"]), url=base))
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                log.info("known peer %s not reachable now: %s", url, exc)
    return found


@dataclass(frozen=True)
class Pong:
    """A node that answered a Ping: who, where, how many works it shares, how far."""

    peer_id: str
    url: str
    works: int
    hops: int

    def to_json(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "url": self.url, "works": self.works, "hops": self.hops}


@dataclass(frozen=True)
class QueryHit:
    """A node that holds pieces of the queried work."""

    peer_id: str
    url: str
    work_id: str
    bitfield: str  # base64, checked against the manifest by whoever uses it
    hops: int

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "url": self.url,
            "work": self.work_id,
            "bitfield": self.bitfield,
            "hops": self.hops,
        }

    def as_source(self, piece_count: int) -> Source | None:
        """A download source, or None if the bitfield does not fit the manifest."""
        try:
            bits = bitfield_decode(self.bitfield, piece_count)
        except BitfieldError:
            return None
        if not bitfield_count(bits):
            return None
        return Source(peer_id=self.peer_id, url=self.url, bitfield=bits)


@dataclass(frozen=True)
class Message:
    kind: str
    message_id: str
    ttl: int
    hops: int
    sender: str
    work_id: str | None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": GNUTELLA_VERSION,
            "type": self.kind,
            "id": self.message_id,
            "ttl": self.ttl,
            "hops": self.hops,
            "from": self.sender,
        }
        if self.work_id is not None:
            body["work"] = self.work_id
        return body


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def parse_message(body: object) -> Message:
    """A message from its JSON, strictly; ``GnutellaError`` if anything is off."""
    if not isinstance(body, dict):
        raise GnutellaError("a Gnutella message is a JSON object")
    kind = body.get("type")
    if kind not in _TYPES:
        raise GnutellaError("the message type is 'ping' or 'query'")
    if set(body) != _FIELDS[kind]:
        raise GnutellaError(f"a {kind} has exactly the fields {sorted(_FIELDS[kind])}")
    if body["v"] != GNUTELLA_VERSION:
        raise GnutellaError(f"unsupported message version (this node speaks {GNUTELLA_VERSION})")
    message_id = body["id"]
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        raise GnutellaError("the message id is 16 bytes in lowercase hex")
    # A huge TTL is clamped, not refused; a TTL that is not a small integer is malformed.
    if not _is_int(body["ttl"], 0, 2**31 - 1) or not _is_int(body["hops"], 0, 255):
        raise GnutellaError("ttl and hops are non-negative integers (hops at most 255)")
    sender = body["from"]
    if not isinstance(sender, str) or not _ID.match(sender):
        raise GnutellaError("'from' is the sending node's peer id")
    work_id = body.get("work")
    if kind == "query" and (not isinstance(work_id, str) or not _ID.match(work_id)):
        raise GnutellaError("a query names a work id")
    return Message(
        kind=kind,
        message_id=message_id,
        ttl=body["ttl"],
        hops=body["hops"],
        sender=sender,
        work_id=work_id if kind == "query" else None,
    )


def _parse_pong(item: object) -> Pong | None:
    if not isinstance(item, dict):
        return None
    peer_id, url, works, hops = (item.get(k) for k in ("peer_id", "url", "works", "hops"))
    if not (
        isinstance(peer_id, str)
        and _ID.match(peer_id)
        and _is_url(url)
        and _is_int(works, 0, 2**31)
        and _is_int(hops, 0, 255)
    ):
        return None
    return Pong(peer_id=peer_id, url=url, works=works, hops=hops)  # type: ignore[arg-type]


def _parse_hit(item: object, work_id: str) -> QueryHit | None:
    if not isinstance(item, dict):
        return None
    peer_id, url, work, bits, hops = (
        item.get(k) for k in ("peer_id", "url", "work", "bitfield", "hops")
    )
    if not (
        isinstance(peer_id, str)
        and _ID.match(peer_id)
        and _is_url(url)
        and work == work_id
        and isinstance(bits, str)
        and len(bits) <= 24_000  # 131,072 pieces in base64
        and _is_int(hops, 0, 255)
    ):
        return None
    return QueryHit(
        peer_id=peer_id, url=url, work_id=work_id, bitfield=bits, hops=hops  # type: ignore[arg-type]
    )


class _Seen:
    """Message ids seen recently: bounded in size, each forgotten after ``seconds``."""

    def __init__(self, *, size: int, seconds: float, clock: Callable[[], float]) -> None:
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._seconds = seconds
        self._clock = clock

    def add(self, message_id: str) -> bool:
        """Remember ``message_id``; False if it was already remembered."""
        now = self._clock()
        ids = self._ids
        while ids:
            oldest, expires = next(iter(ids.items()))
            if expires > now:
                break
            del ids[oldest]
        if message_id in ids:
            return False
        ids[message_id] = now + self._seconds
        while len(ids) > self._size:
            ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


def holdings_from_store(store: PieceStore) -> Callable[[str], bytes | None]:
    """What a node answers queries with: the bitfield of a work it holds pieces of."""

    def holdings(work_id: str) -> bytes | None:
        work = store.get(work_id)
        if work is None or not work.held_count:
            return None
        return work.bitfield()

    return holdings


class GnutellaNode:
    """One node of the fallback network; serve it with ``PieceServer(gnutella=...).app()``."""

    def __init__(
        self,
        *,
        peer_id: str,
        url: str,
        holdings: Callable[[str], bytes | None],
        works_shared: Callable[[], int] = lambda: 0,
        neighbours: Iterable[Neighbour] = (),
        hop_timeout: float = DEFAULT_HOP_TIMEOUT,
        max_ttl: int = MAX_TTL,
        seen_size: int = DEFAULT_SEEN_SIZE,
        seen_seconds: float = DEFAULT_SEEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[int], bytes] = os.urandom,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.url = url
        self._holdings = holdings
        self._works_shared = works_shared
        self._neighbours: dict[str, Neighbour] = {}
        for neighbour in neighbours:
            self.add_neighbour(neighbour)
        self._hop_timeout = hop_timeout
        self._max_ttl = max_ttl
        self._seen = _Seen(size=seen_size, seconds=seen_seconds, clock=clock)
        self._random = random
        self._session = session
        self._owns_session = session is None
        #: counters, for status and tests
        self.received = 0
        self.duplicates = 0
        self.forwarded = 0

    @property
    def neighbours(self) -> list[Neighbour]:
        return list(self._neighbours.values())

    def add_neighbour(self, neighbour: Neighbour) -> None:
        if neighbour.peer_id != self.peer_id:
            self._neighbours[neighbour.peer_id] = neighbour

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    # -- originating --------------------------------------------------------------

    async def query(self, work_id: str, *, ttl: int = DEFAULT_QUERY_TTL) -> list[QueryHit]:
        """Flood a query for ``work_id``; the hits, nearest first, one per peer (not self)."""
        message = self._originate("query", ttl, work_id)
        answers = await self._forward(message, exclude=None)
        best: dict[str, QueryHit] = {}
        for item in answers:
            hit = _parse_hit(item, work_id)
            if hit is None or hit.peer_id == self.peer_id:
                continue
            if hit.peer_id not in best or hit.hops < best[hit.peer_id].hops:
                best[hit.peer_id] = hit
        return sorted(best.values(), key=lambda h: (h.hops, h.peer_id))

    async def ping(self, *, ttl: int = DEFAULT_QUERY_TTL) -> list[Pong]:
        """Flood a ping; the nodes that answered, nearest first, one per peer (not self)."""
        message = self._originate("ping", ttl, None)
        answers = await self._forward(message, exclude=None)
        best: dict[str, Pong] = {}
        for item in answers:
            pong = _parse_pong(item)
            if pong is None or pong.peer_id == self.peer_id:
                continue
            if pong.peer_id not in best or pong.hops < best[pong.peer_id].hops:
                best[pong.peer_id] = pong
        return sorted(best.values(), key=lambda p: (p.hops, p.peer_id))

    async def discover(self, *, ttl: int = DEFAULT_QUERY_TTL, limit: int = 8) -> list[Pong]:
        """Ping, then take up to ``limit`` neighbours in all (nearest first) from the pongs."""
        pongs = await self.ping(ttl=ttl)
        for pong in pongs:
            if len(self._neighbours) >= limit:
                break
            self.add_neighbour(Neighbour(peer_id=pong.peer_id, url=pong.url))
        return pongs

    def _originate(self, kind: str, ttl: int, work_id: str | None) -> Message:
        message_id = self._random(16).hex()
        self._seen.add(message_id)
        return Message(
            kind=kind,
            message_id=message_id,
            ttl=max(0, min(ttl, self._max_ttl)),
            hops=0,
            sender=self.peer_id,
            work_id=work_id,
        )

    # -- relaying -----------------------------------------------------------------

    async def handle(self, body: object) -> dict[str, Any]:
        """Answer a message from a neighbour (the body of ``POST /v1/gnutella``)."""
        message = parse_message(body)
        self.received += 1
        key = "hits" if message.kind == "query" else "pongs"
        if not self._seen.add(message.message_id):
            self.duplicates += 1
            return {"duplicate": True, key: []}
        ttl = min(message.ttl, self._max_ttl, max(0, self._max_ttl - message.hops))
        distance = message.hops + 1
        answers: list[dict[str, Any]] = []
        own = self._own_answer(message, distance)
        if own is not None:
            answers.append(own)
        if ttl - 1 > 0:
            onward = Message(
                kind=message.kind,
                message_id=message.message_id,
                ttl=ttl - 1,
                hops=distance,
                sender=self.peer_id,
                work_id=message.work_id,
            )
            answers.extend(await self._forward(onward, exclude=message.sender))
        return {key: answers[:MAX_RESULTS]}

    def _own_answer(self, message: Message, distance: int) -> dict[str, Any] | None:
        if message.kind == "ping":
            return Pong(self.peer_id, self.url, self._works_shared(), distance).to_json()
        assert message.work_id is not None
        bits = self._holdings(message.work_id)
        if bits is None:
            return None
        return QueryHit(
            self.peer_id, self.url, message.work_id, bitfield_encode(bits), distance
        ).to_json()

    async def _forward(self, message: Message, *, exclude: str | None) -> list[dict[str, Any]]:
        targets = [n for n in self._neighbours.values() if n.peer_id != exclude]
        if not targets or message.ttl <= 0:
            return []
        deadline = self._hop_timeout * message.ttl
        body = message.to_json()
        results = await asyncio.gather(
            *(self._send(n, body, deadline) for n in targets), return_exceptions=False
        )
        self.forwarded += len(targets)
        key = "hits" if message.kind == "query" else "pongs"
        answers: list[dict[str, Any]] = []
        for answer in results:
            items = answer.get(key) if isinstance(answer, dict) else None
            if isinstance(items, list):
                answers.extend(i for i in items[:MAX_RESULTS] if isinstance(i, dict))
        return answers[:MAX_RESULTS]

    async def _send(self, neighbour: Neighbour, body: dict[str, Any], deadline: float) -> object:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = neighbour.url.rstrip("/") + GNUTELLA_PATH
        try:
            async with asyncio.timeout(deadline):
                async with self._session.post(url, json=body) as response:
                    size = response.content_length
                    if response.status != 200 or size is None or size > MAX_RESPONSE_BODY:
                        return None
                    raw = await response.read()
            return parse_json_body(raw, max_size=MAX_RESPONSE_BODY)
        except (TimeoutError, aiohttp.ClientError, BodyError) as error:
            log.debug("gnutella: no answer from %s: %s", neighbour.peer_id, error)
            return None


def sources_from_hits(hits: Sequence[QueryHit], piece_count: int) -> list[Source]:
    """The hits that fit the manifest, as download sources."""
    found = (hit.as_source(piece_count) for hit in hits)
    return [source for source in found if source is not None]


__all__ = [
    "MAX_TTL",
    "GnutellaError",
    "GnutellaNode",
    "Message",
    "Neighbour",
    "Pong",
    "QueryHit",
    "holdings_from_store",
    "parse_message",
    "sources_from_hits",
]
