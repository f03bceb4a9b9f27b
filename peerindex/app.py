"""The index's HTTP interface: a plain ASGI application (no framework: every request is a
few dictionary lookups, one Redis script and a JSON answer, and a framework's routing and
request objects would cost more than the work itself; docs/INDEX.md has the measurements).

Routes (docs/API.md, "The index fast path"):

- ``POST /index/v1/announce``: where a peer listens and what it holds, many works at once;
- ``GET /index/v1/announce?work=&port=&bitfield=&numwant=``: one work, the tracker's case,
  answered with sources;
- ``POST /index/v1/heartbeat``: still here;
- ``GET /index/v1/works/<id>/sources?n=``: who to fetch a work from;
- ``GET /index/v1/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from peerindex import schema
from peerindex.catalogue import UNKNOWN, Catalogue
from peerindex.config import Config
from peerindex.credentials import Claims, CredentialError
from peerindex.gate import Gate, LimitedError
from peerindex.heartbeats import Heartbeats
from peerindex.inputs import (
    MAX_BODY,
    MAX_SOURCES,
    WORK_ID,
    AnnounceBody,
    InvalidError,
    Query,
    announce_body,
    held,
)
from peerindex.link import STALL_SECONDS, Link, RedisError, RedisUnavailableError
from peerindex.lookup import Lookup, fetch_for, lookup
from peerindex.records import Candidate, endpoint_url
from peerindex.sources_cache import Holders, SourcesCache
from peerindex.store import Held, announce_call
from peerindex.wire import AnnounceWire

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("peerindex")
RETRY_AFTER_UNAVAILABLE = 5
BODY_SECONDS = 10.0
SOURCES_PREFIX = "/index/v1/works/"
#: the young generation's collection threshold, in net container allocations (Python: 700)
GC_YOUNG_THRESHOLD = 20_000


class _ReplyError(Exception):
    """An answer other than success, raised from anywhere in a handler."""

    def __init__(self, status: int, code: str, message: str, *, field: str = "",
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field, self.retry_after = status, code, field, retry_after


def _settle_collector() -> None:
    """Keep the cyclic garbage collector out of the answers' tail latency.

    A full collection walks every object the process tracks: at first the 60,000 or so
    that imports and start-up made, which never die, and those cost a worker 30 to 70 ms
    of stopped event loop each time (16 requests waiting). Frozen, they are never walked
    again. The young generation's threshold is raised too (from 700 allocations to
    20,000), since a batched announce alone allocates hundreds of containers, nearly all
    freed by reference counting anyway. Measured with the benchmark's batched announces
    after its lookups had filled the caches (docs/INDEX.md): p99 52-60 ms as Python comes,
    32-41 ms so, 33-40 ms with the collector off. Process-wide, as it must be: the app is
    served in processes of its own (``serve.py``), nothing else runs in them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def _error_body(code: str, message: str, field: str) -> bytes:
    fields = {field: [message]} if field else {}
    return json.dumps({"error": {"code": code, "message": message, "fields": fields}},
                      separators=(",", ":"), ensure_ascii=False).encode()


class IndexApp:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.link = Link(config.redis_url)
        self.gate = Gate(config.keys, per_address=config.rate_per_address,
                         per_credential=config.rate_per_credential)
        self.catalogue = Catalogue(self.link)
        self.heartbeats = Heartbeats(self.link, peer_ttl=config.peer_timeout)
        self.sources_cache = SourcesCache(config.sources_cache_ms / 1000)
        self.wire = AnnounceWire()
        self._revoked_generation: bytes | None = b"?"
        self._watcher: asyncio.Task[None] | None = None
        self._interval = b'{"interval":%d}' % config.announce_interval

    # --- lifespan ------------------------------------------------------------------

    async def _watch(self) -> None:
        """Every second: a stalled Redis is dropped, and what the platform changed
        (works on sale, revocations) is picked up."""
        while True:
            with contextlib.suppress(RedisUnavailableError, RedisError, TimeoutError):
                await asyncio.wait_for(self.refresh(), STALL_SECONDS)
            self.link.check_stall()
            await asyncio.sleep(1.0)

    async def refresh(self) -> None:
        works_gen, revoked_gen = await self.link.call("MGET", schema.WORKS_GEN,
                                                      schema.REVOKED_GEN)
        self.catalogue.changed(works_gen)
        if revoked_gen != self._revoked_generation:
            now = int(time.time())
            members = await self.link.call("ZRANGEBYSCORE", schema.REVOKED, now, "+inf")
            self.gate.set_revoked(m.decode() for m in members)
            self.sources_cache.forget()  # a revoked device's peers leave the answers now
            self._revoked_generation = revoked_gen

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                with contextlib.suppress(RedisUnavailableError, RedisError, TimeoutError):
                    await asyncio.wait_for(self.refresh(), STALL_SECONDS)
                self._watcher = asyncio.ensure_future(self._watch())
                _settle_collector()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._watcher is not None:
                    self._watcher.cancel()
                self.link.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- HTTP ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers: list[tuple[bytes, bytes]] = []
        try:
            status, body = await self._route(scope, receive)
        except _ReplyError as reply:
            status, body = reply.status, _error_body(reply.code, str(reply), reply.field)
            if reply.retry_after is not None:
                headers.append((b"retry-after", b"%d" % reply.retry_after))
        except InvalidError as exc:  # wherever input is read
            status, body = exc.status, _error_body(exc.code, str(exc), exc.field)
        except (RedisUnavailableError, RedisError) as exc:
            log.warning("index: Redis: %s", exc)
            status = 503
            body = _error_body("index_unavailable", "The index is unavailable for a moment: "
                               "retry after the time given, or use the platform's API.", "")
            headers.append((b"retry-after", b"%d" % RETRY_AFTER_UNAVAILABLE))
        except Exception:  # a defect: logged once, answered in the one error shape
            log.exception("index: request failed")
            status = 500
            body = _error_body("server_error", "The index failed on this request.", "")
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/index/v1/health":
            return await self._health()
        claims = self._admit(scope)
        if path == "/index/v1/heartbeat":
            self._method(method, "POST")
            await self._drain(receive, limit=1024)
            return await self._heartbeat(claims)
        if path == "/index/v1/announce":
            if method == "POST":
                return await self._announce(claims, scope, await self._body(scope, receive))
            self._method(method, "GET")
            return await self._announce_one(claims, scope)
        if path.startswith(SOURCES_PREFIX) and path.endswith("/sources"):
            self._method(method, "GET")
            work = path[len(SOURCES_PREFIX):-len("/sources")]
            return await self._sources(claims, work, Query.parse(scope["query_string"]))
        raise _ReplyError(404, "not_found", "No such index route.")

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise _ReplyError(405, "method_not_allowed", f"Use {allowed} here.")

    def _admit(self, scope: Scope) -> Claims:
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        client = scope.get("client")
        address = client[0] if client else ""
        try:
            return self.gate.admit(header, address, int(time.time()))
        except CredentialError as exc:
            raise _ReplyError(401, exc.code, str(exc)) from None
        except LimitedError as exc:
            raise _ReplyError(429, "rate_limited", "Too many requests: slow down.",
                         retry_after=exc.retry_after) from None

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        """The request's body: refused at once if it says it is too large, and given
        ``BODY_SECONDS`` to arrive (a client that trickles bytes holds no memory long)."""
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or len(value) > 9
                                              or int(value) > MAX_BODY):
                raise _ReplyError(413, "too_large", f"At most {MAX_BODY} bytes in a request.")
        try:
            async with asyncio.timeout(BODY_SECONDS):  # no task of its own, as wait_for's
                return await self._drain(receive)
        except TimeoutError:
            raise _ReplyError(408, "timeout", "The request's body came too slowly.") from None

    @staticmethod
    async def _drain(receive: Receive, limit: int = MAX_BODY) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ReplyError(400, "invalid", "The request ended early.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _ReplyError(413, "too_large", f"At most {limit} bytes in a request.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _health(self) -> tuple[int, bytes]:
        await self.link.call("PING")
        return 200, b'{"ok":true}'

    async def _heartbeat(self, claims: Claims) -> tuple[int, bytes]:
        if not await self.heartbeats.beat(claims.device):
            raise _ReplyError(409, "not_announced", "Announce before sending heartbeats.",
                         field="device")
        return 200, self._interval

    def _endpoint(self, scope: Scope, host: str) -> str:
        client = scope.get("client")
        source = client[0] if client else ""
        chosen = host or source
        if chosen != source and not self.config.allow_announced_host:
            raise _ReplyError(400, "host_mismatch", f"Announced host {chosen} is not the address "
                         f"you connect from ({source}).", field="host")
        if not _is_address(chosen) and not self.config.allow_announced_host:
            raise _ReplyError(400, "invalid", "Announce an IP address.", field="host")
        return chosen

    async def _checked(self, holdings: list[tuple[str, str]], *, urlsafe: bool = False
                       ) -> list[Held]:
        """Each holding checked against the catalogue: a batch's works are looked up in
        this process's memory in one pass, and the ones it does not know read from
        Redis in one round trip. (A batch that straddles a catalogue change is checked
        against the entries as they were when it was read.)"""
        remembered = self.catalogue.remembered
        entries = [remembered(work) for work, _ in holdings]
        if any(entry is UNKNOWN for entry in entries):
            learned = await self.catalogue.learn(work for work, _ in holdings)
            entries = [learned[work] if entry is UNKNOWN else entry
                       for (work, _), entry in zip(holdings, entries, strict=True)]
        checked: list[Held] = []
        append = checked.append
        full = self.catalogue.full_bitfield
        for index, ((work, bits), entry) in enumerate(zip(holdings, entries, strict=True)):
            if entry is None:
                raise _ReplyError(400, "unknown_work", f"No work {work} on sale.",
                                  field="work" if urlsafe else f"holdings[{index}].work")
            if not urlsafe and bits.encode() == full(entry.pieces):
                append(Held(work, entry.pieces, ""))  # a seeder's: the usual case
                continue
            try:
                append(held(work, bits, entry,
                            "bitfield" if urlsafe else f"holdings[{index}].bitfield",
                            urlsafe=urlsafe))
            except InvalidError as exc:
                raise _ReplyError(exc.status, exc.code, str(exc), field=exc.field) from None
        return checked

    async def _announce(self, claims: Claims, scope: Scope, raw: bytes) -> tuple[int, bytes]:
        try:
            body: AnnounceBody = announce_body(raw)
        except InvalidError as exc:
            raise _ReplyError(exc.status, exc.code, str(exc), field=exc.field) from None
        host = self._endpoint(scope, body.host)
        checked = await self._checked(body.holdings)
        await self._store(claims, host=host, port=body.port, version=body.version,
                          held=checked, replace=body.replace)
        answer = {"peer_id": claims.device, "url": endpoint_url(host, body.port),
                  "interval": self.config.announce_interval, "holdings": len(checked)}
        return 200, json.dumps(answer, separators=(",", ":")).encode()

    async def _announce_one(self, claims: Claims, scope: Scope) -> tuple[int, bytes]:
        try:
            query = Query.parse(scope["query_string"])
            work = query.work()
            port = query.integer("port", -1, 1, 65535)
            if port < 0:
                raise InvalidError("port is required.", field="port")
            want = query.integer("numwant", 50, 0, MAX_SOURCES)
        except InvalidError as exc:
            raise _ReplyError(exc.status, exc.code, str(exc), field=exc.field) from None
        host = self._endpoint(scope, "")
        bits: str | None = query.values.get("bitfield", "")
        if query.values.get("event") == "stopped":
            bits = None
        entry = await self.catalogue.get(work)
        if entry is None:
            raise _ReplyError(400, "unknown_work", f"No work {work} on sale.", field="work")
        if bits is None:
            item = Held(work, 0, "")
        else:
            item = (await self._checked([(work, bits)], urlsafe=True))[0]
        written = self._add_soon(claims, host=host, port=port, version="", held=[item])
        if not want:
            _applied(await written)
            return 200, self._interval
        try:
            found = await self._found(work, entry.pieces, want)
        finally:
            applied = await written  # its outcome is always collected
        _applied(applied)
        return 200, self._sources_body(found, want, extra=b"", skip=claims.device.encode())

    async def _store(self, claims: Claims, *, host: str, port: int, version: str,
                     held: list[Held], replace: bool) -> None:
        """An announce into Redis: one MULTI/EXEC of plain commands, or the script for a
        replacing one (it reads the peer's works first)."""
        now = int(time.time())
        if replace:
            keys, args = announce_call(
                device=claims.device, user=claims.user, host=host, port=port,
                version=version, held=held, replace=True, now=now,
                peer_ttl=self.config.peer_timeout)
            await self.link.script(schema.ANNOUNCE, keys, args)
            return
        _applied(await self._add_soon(claims, host=host, port=port, version=version,
                                      held=held))

    def _add_soon(self, claims: Claims, *, host: str, port: int, version: str,
                  held: list[Held]) -> asyncio.Future[Any]:
        """A (not replacing) announce queued on the link now; EXEC's reply later."""
        packed, count = self.wire.announce(
            device=claims.device, user=claims.user, host=host, port=port, version=version,
            held=held, now=int(time.time()), peer_ttl=self.config.peer_timeout)
        return self.link.packed_transaction_soon(packed, count)

    async def _lookup(self, steps: Lookup) -> list[Candidate]:
        """Drive a lookup on the shared link: each round trip's commands written
        together."""
        replies: list[Any] | None = None
        try:
            while True:
                commands = steps.send(replies) if replies is not None else next(steps)
                replies = await self.link.calls(commands)
        except StopIteration as done:
            return list(done.value)

    async def _found(self, work: str, pieces: int, want: int) -> Holders:
        """The work's live holders, read for this lookup or shared with others of the
        same moment (``sources_cache``)."""
        return await self.sources_cache.read(
            work, fetch_for(want), self.catalogue.full_bitfield(pieces),
            lambda: self._lookup(lookup(work, pieces=pieces, want=want)))

    def _sources_body(self, found: Holders, want: int, *, extra: bytes,
                      skip: bytes = b"") -> bytes:
        """The answer: the asker's own device is never one of its sources."""
        return (b'{"interval":%d,"sources":' % self.config.announce_interval
                + found.sources_json(want, skip) + extra + b"}")

    async def _sources(self, claims: Claims, work: str, query: Query) -> tuple[int, bytes]:
        if not WORK_ID.fullmatch(work):
            raise _ReplyError(404, "unknown_work", "No such work on sale.")
        try:
            want = query.integer("n", 50, 1, MAX_SOURCES)
        except InvalidError as exc:
            raise _ReplyError(exc.status, exc.code, str(exc), field=exc.field) from None
        entry = await self.catalogue.get(work)
        if entry is None:
            raise _ReplyError(404, "unknown_work", "No such work on sale.")
        found = await self._found(work, entry.pieces, want)
        seeds = b',"web_seeds":' + json.dumps(list(entry.web_seeds)).encode()
        return 200, self._sources_body(found, want, extra=seeds)


@functools.lru_cache(maxsize=65_536)
def _is_address(host: str) -> bool:
    """Remembered for the hosts announcing now: parsing one is a tenth of an announce's
    own time."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _applied(done: Any) -> None:
    """EXEC's reply for an announce: every command done, or an error to answer 503. Its
    replies are integers and SET's "OK"; only a failed one is of another kind (the kinds
    are collected in C: a batched announce has hundreds)."""
    if done is None:
        raise RedisError("the announce was not applied: aborted")
    if not set(map(type, done)) <= _DONE_KINDS:
        failed = [r for r in done if isinstance(r, Exception)]
        raise RedisError(f"the announce was not applied: {failed}")


_DONE_KINDS = {int, bytes}


def create_app() -> IndexApp:
    """The application, configured from the environment (uvicorn's ``--factory``)."""
    return IndexApp(Config.from_env())
