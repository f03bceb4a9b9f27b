"""Fetching the missing pieces of one work from several peers and web seeds at once.

The rules (docs/PROTOCOL.md, "Downloading"):

* Sources: peers (``Source``: device id, base URL, bitfield; each request carries the
  licence and an order signed for that peer and piece) and web seeds (a plain HTTP
  URL of the whole ciphertext file; one ``Range`` request per piece, no licence, no
  order, not metered).
* Connections: ``max_connections`` workers (default 8) share the sources; each source
  takes at most ``ceil(max_connections / sources)`` requests at once, capped at
  ``connections_per_source`` (default 4), so one source still gets 4 connections and
  4 sources get 2 each. One piece per request.
* Piece choice: rarest first (fewest live sources holding it; random among equals).
* Endgame: once every missing piece is in flight, an idle connection duplicates the
  piece that has been in flight longest at another source (up to ``endgame_copies``
  copies); the first verified copy wins and the others are cancelled.
* Checks: the length announced and received, then the SHA-256 against the signed
  manifest (``WorkStore.write_piece``) before anything is written. A source that sends
  a bad piece, a truncated or wrong-length body, garbage HTTP or an error status is
  dropped and its pieces are reassigned; one silent for ``stall_timeout`` seconds
  (default 10) is dropped as stalled. ``404 piece-not-held`` only clears that bit;
  ``429 busy`` rests the source for its ``Retry-After``.
* Stop: when no live source holds some missing piece, ``NoSourceError`` names the
  pieces and the reasons sources were dropped; verified pieces stay in the store, so
  a later run resumes from them.

Bodies are read by ``httpclient.HttpPool`` straight into reused piece-sized buffers;
hashing and writing run in threads (``hashlib`` and ``os.pwrite`` release the GIL) so
the event loop keeps the sockets busy on the other core.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from licensing.core import (
    DeviceKeys,
    Licence,
    LicensingError,
    sign_order,
)
from licensing.core.bitfield import BitfieldError, bitfield_full, bitfield_has, check_bitfield

from .httpclient import (
    MAX_REDIRECTS,
    FetchError,
    HttpPool,
    LengthError,
    StallError,
    StatusError,
    TruncatedError,
)
from .ratelimit import TokenBucket
from .store import StoreError, WorkStore
from .wire import (
    LICENCE_HEADER,
    ORDER_HEADER,
    ErrorCode,
    parse_error,
    piece_url,
    range_header,
)

DEFAULT_MAX_CONNECTIONS = 8
DEFAULT_CONNECTIONS_PER_SOURCE = 4
DEFAULT_STALL_TIMEOUT = 10.0
DEFAULT_ENDGAME_COPIES = 3
#: the longest a busy source (429) is rested before it is asked again
MAX_BUSY_REST = 30.0


@dataclass(frozen=True)
class Source:
    """A peer that holds pieces of the work: its device id, base URL and bitfield.

    ``bitfield`` None means "unknown": the peer is asked for any piece, and its
    ``404 piece-not-held`` answers teach the downloader what it lacks.
    """

    peer_id: str
    url: str
    bitfield: bytes | None = None


@dataclass(frozen=True)
class Progress:
    """Where a download stands (counts include pieces held before this run)."""

    bytes_done: int
    bytes_total: int
    pieces_done: int
    pieces_total: int


@dataclass(frozen=True)
class DroppedSource:
    """A source the downloader stopped using, and why."""

    source: str
    reason: str


@dataclass
class DownloadResult:
    """What one run fetched, from whom."""

    #: pieces written by this run, in the order they were verified
    pieces_fetched: list[int] = field(default_factory=list)
    #: verified ciphertext bytes per serving peer id (for the receipt's ``served``)
    bytes_by_peer: dict[str, int] = field(default_factory=dict)
    #: verified ciphertext bytes per web seed URL (not metered)
    bytes_by_web_seed: dict[str, int] = field(default_factory=dict)
    dropped: list[DroppedSource] = field(default_factory=list)
    #: endgame duplicate requests started
    endgame_requests: int = 0
    elapsed: float = 0.0

    @property
    def web_seed_bytes(self) -> int:
        return sum(self.bytes_by_web_seed.values())

    @property
    def bytes_fetched(self) -> int:
        return sum(self.bytes_by_peer.values()) + self.web_seed_bytes


class DownloadError(Exception):
    """A download stopped before the work was complete; ``result`` says what it got."""

    def __init__(self, message: str, result: DownloadResult) -> None:
        super().__init__(message)
        self.result = result


class NoSourceError(DownloadError):
    """No live source holds some missing piece."""

    def __init__(self, message: str, result: DownloadResult, missing: Sequence[int]) -> None:
        super().__init__(message, result)
        self.missing = tuple(missing)


class _SourceFailedError(Exception):
    """The source must be dropped (``str`` is the reason)."""


class _NotHeldError(Exception):
    """The source says it does not hold this piece."""


class _BusyError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"busy, retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class _Src:
    """The downloader's view of one source."""

    __slots__ = (
        "bits",
        "busy_until",
        "dead",
        "fetching",
        "is_peer",
        "key",
        "load",
        "order",
        "order_version",
        "position",
        "url",
    )

    def __init__(self, *, key: str, url: str, is_peer: bool, bits: bytearray | None) -> None:
        self.key = key
        self.url = url
        self.is_peer = is_peer
        self.bits = bits  # None: holds every piece
        self.dead = False
        self.load = 0
        self.busy_until = 0.0
        self.fetching: dict[int, asyncio.Task[bytearray]] = {}
        self.order: list[int] = []
        self.order_version = -1
        self.position = 0

    def holds(self, index: int) -> bool:
        return self.bits is None or bitfield_has(self.bits, index)

    def forget(self, index: int) -> None:
        if self.bits is None:
            return
        self.bits[index >> 3] &= ~(0x80 >> (index & 7)) & 0xFF


class Downloader:
    """Fetches the missing pieces of ``work`` from ``sources`` and ``web_seeds``.

    ``licence`` is the verified licence (``read_licence`` on this device) and
    ``licence_token`` its token, sent to peers with every order; ``device`` signs the
    orders. ``progress`` is called on the event loop after each verified piece;
    ``on_piece(index, ciphertext)`` in a worker thread right after a piece is written
    (e.g. to decrypt a large non-image work while it downloads; it must be thread-safe,
    and the view is valid only during the call: its buffer is reused).
    """

    def __init__(
        self,
        *,
        work: WorkStore,
        licence: Licence,
        licence_token: str,
        device: DeviceKeys,
        sources: Sequence[Source] = (),
        web_seeds: Sequence[str] = (),
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connections_per_source: int = DEFAULT_CONNECTIONS_PER_SOURCE,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        rate_limit_bps: float | None = None,
        endgame_copies: int = DEFAULT_ENDGAME_COPIES,
        progress: Callable[[Progress], None] | None = None,
        on_piece: Callable[[int, memoryview], None] | None = None,
        pool: HttpPool | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        licence.check_manifest(work.manifest)  # MismatchError: a licence for another work
        if max_connections < 1 or connections_per_source < 1:
            raise ValueError("a download needs at least one connection")
        self._work = work
        self._manifest = work.manifest
        self._licence = licence
        self._licence_token = licence_token
        self._device = device
        self._max_connections = max_connections
        self._connections_per_source = connections_per_source
        self._stall_timeout = stall_timeout
        self._limiter = TokenBucket(rate_limit_bps) if rate_limit_bps else None
        self._endgame_copies = max(1, endgame_copies)
        self._progress = progress
        self._on_piece = on_piece
        self._pool = pool
        self._clock = clock
        self._random = random
        self._result = DownloadResult()
        self._sources: list[_Src] = []
        seen: set[str] = set()
        count = self._manifest.piece_count
        for source in sources:
            if source.peer_id in seen or source.peer_id == device.device_id:
                continue
            seen.add(source.peer_id)
            bits = bytearray(bitfield_full(count))  # unknown: ask for anything, learn from 404s
            if source.bitfield is not None:
                try:
                    bits = bytearray(check_bitfield(source.bitfield, count))
                except BitfieldError as error:
                    reason = f"bad bitfield: {error}"
                    self._result.dropped.append(DroppedSource(source.peer_id, reason))
                    continue
            self._sources.append(_Src(key=source.peer_id, url=source.url, is_peer=True, bits=bits))
        for url in web_seeds:
            if url in seen:
                continue
            seen.add(url)
            self._sources.append(_Src(key=url, url=url, is_peer=False, bits=None))
        # Run state (set up by run()).
        self._remaining: set[int] = set()
        self._pending: set[int] = set()
        self._requeued: set[int] = set()
        self._inflight: dict[int, dict[_Src, float]] = {}
        self._avail: dict[int, int] = {}
        self._tiebreak: dict[int, int] = {}
        self._version = 0
        self._per_source = 1
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._error: BaseException | None = None
        self._bytes_done = 0
        self._pieces_done = 0
        self._verifying = asyncio.Semaphore(2 * max_connections)
        self._storing: set[asyncio.Task[None]] = set()
        #: pieces received and being verified (not worth duplicating in the endgame)
        self._checking: set[int] = set()

    # -- the run ------------------------------------------------------------------

    async def run(self) -> DownloadResult:
        """Fetch every missing piece; return the result, or raise ``DownloadError``."""
        started = time.monotonic()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        missing = self._work.missing()
        self._remaining = set(missing)
        self._pending = set(missing)
        self._pieces_done = self._work.held_count
        self._bytes_done = self._work.held_bytes
        noise = self._random(4 * len(missing)) if missing else b""
        self._tiebreak = {
            index: int.from_bytes(noise[4 * n : 4 * n + 4], "big")
            for n, index in enumerate(missing)
        }
        self._recount()
        if not self._remaining:
            self._result.elapsed = time.monotonic() - started
            return self._result
        self._check_coverage()
        if self._error is not None:
            raise self._error
        owned = self._pool is None
        pool = self._pool or HttpPool()
        self._verifying = asyncio.Semaphore(2 * self._max_connections)
        workers = [
            asyncio.create_task(self._worker(pool), name=f"peermark-download-{n}")
            for n in range(self._max_connections)
        ]
        try:
            await self._done.wait()
        finally:
            for task in workers:
                task.cancel()
            for src in self._sources:
                for fetch in src.fetching.values():
                    fetch.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            # Pieces still being verified (endgame duplicates) finish: never cut a write.
            await asyncio.gather(*list(self._storing), return_exceptions=True)
            if owned:
                await pool.close()
            self._result.elapsed = time.monotonic() - started
        if self._error is not None:
            raise self._error
        return self._result

    def _finish(self, error: BaseException | None = None) -> None:
        if self._error is None and error is not None:
            self._error = error
        self._done.set()
        self._notify()

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    # -- bookkeeping --------------------------------------------------------------

    def _live(self) -> list[_Src]:
        return [s for s in self._sources if not s.dead]

    def _recount(self) -> None:
        """Availability of every remaining piece among live sources; reset the orders."""
        live = self._live()
        self._avail = {index: sum(1 for s in live if s.holds(index)) for index in self._remaining}
        share = math.ceil(self._max_connections / max(1, len(live)))
        self._per_source = max(1, min(self._connections_per_source, share))
        self._version += 1

    def _check_coverage(self) -> None:
        """Set aside pieces no live source holds; stop once nothing else can be fetched.

        The download goes on with what the live sources hold (so a later run has less
        to fetch), and ends with ``NoSourceError`` when only orphaned pieces are left.
        """
        self._pending = {i for i in self._pending if self._avail.get(i, 0) > 0}
        self._requeued &= self._pending
        self._check_stuck()

    def _check_stuck(self) -> None:
        if self._pending or self._inflight or not self._remaining or self._done.is_set():
            return
        orphans = sorted(self._remaining)
        shown = ", ".join(str(i) for i in orphans[:10]) + (" ..." if len(orphans) > 10 else "")
        reasons = "; ".join(f"{d.source}: {d.reason}" for d in self._result.dropped) or "none"
        self._finish(
            NoSourceError(
                f"no remaining source holds {len(orphans)} missing piece(s) ({shown}); "
                f"dropped sources: {reasons}",
                self._result,
                orphans,
            )
        )

    def _drop(self, src: _Src, reason: str) -> None:
        if src.dead:
            return
        src.dead = True
        self._result.dropped.append(DroppedSource(src.key, reason))
        for task in list(src.fetching.values()):
            task.cancel()
        self._recount()
        self._check_coverage()
        self._notify()

    def _not_held(self, src: _Src, index: int) -> None:
        """The source lacks a piece its bitfield claimed (or it sent no bitfield)."""
        if src.holds(index):
            src.forget(index)
            self._avail[index] = self._avail.get(index, 1) - 1
        self._check_coverage()

    def _release(self, src: _Src, index: int) -> None:
        """``src`` no longer fetches ``index``; put the piece back if nobody else does."""
        fetchers = self._inflight.get(index)
        if fetchers is not None:
            fetchers.pop(src, None)
            if not fetchers:
                del self._inflight[index]
        if (
            index in self._remaining
            and index not in self._inflight
            and self._avail.get(index, 0) > 0
        ):
            self._pending.add(index)
            self._requeued.add(index)
        self._check_stuck()
        self._notify()

    # -- choosing -----------------------------------------------------------------

    def _next_piece(self, src: _Src) -> int | None:
        if self._requeued:
            best: int | None = None
            for index in list(self._requeued):
                if index not in self._pending:
                    self._requeued.discard(index)
                elif src.holds(index) and (
                    best is None or self._avail.get(index, 0) < self._avail.get(best, 0)
                ):
                    best = index
            if best is not None:
                self._requeued.discard(best)
                return best
        if src.order_version != self._version:
            src.order = sorted(
                (i for i in self._pending if src.holds(i)),
                key=lambda i: (self._avail.get(i, 0), self._tiebreak.get(i, 0)),
            )
            src.position = 0
            src.order_version = self._version
        order, pending = src.order, self._pending
        while src.position < len(order):
            index = order[src.position]
            src.position += 1
            if index in pending:
                return index
        return None

    def _choose(self) -> tuple[_Src, int, bool] | None:
        now = time.monotonic()
        ready = [
            s
            for s in self._sources
            if not s.dead and s.load < self._per_source and s.busy_until <= now
        ]
        ready.sort(key=lambda s: s.load)
        for src in ready:
            index = self._next_piece(src)
            if index is not None:
                self._pending.discard(index)
                return src, index, False
        if self._pending:
            return None
        # Endgame: every missing piece is in flight; duplicate the oldest at another source.
        best: tuple[float, _Src, int] | None = None
        for index, fetchers in self._inflight.items():
            if (
                len(fetchers) >= self._endgame_copies
                or index in self._checking
                or index not in self._remaining
            ):
                continue  # enough copies, one is being verified, or it is done
            since = min(fetchers.values())
            for src in ready:
                if src not in fetchers and src.holds(index) and (best is None or since < best[0]):
                    best = (since, src, index)
                    break
        if best is None:
            return None
        return best[1], best[2], True

    # -- working ------------------------------------------------------------------

    async def _worker(self, pool: HttpPool) -> None:
        """One connection's loop: choose, fetch; verification and storage run behind it."""
        while not self._done.is_set():
            choice = self._choose()
            if choice is None:
                wake = self._wake
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._next_rest_end()):
                        await wake.wait()
                continue
            src, index, endgame = choice
            if endgame:
                self._result.endgame_requests += 1
            src.load += 1
            self._inflight.setdefault(index, {})[src] = time.monotonic()
            task = asyncio.create_task(self._fetch(pool, src, index))
            src.fetching[index] = task
            handed_over = False
            try:
                body = await task
                # The connection is free as soon as the body is in: verifying and writing
                # the piece runs behind it, bounded by the number of buffers in flight.
                await self._verifying.acquire()
                if index not in self._remaining:
                    self._verifying.release()
                    pool.release(body)
                    continue
                self._checking.add(index)
                storing = asyncio.create_task(self._store(pool, src, index, body))
                self._storing.add(storing)
                storing.add_done_callback(self._storing.discard)
                handed_over = True
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                continue  # lost an endgame race, or the source was dropped
            except _NotHeldError:
                self._not_held(src, index)
                continue
            except _BusyError as busy:
                src.busy_until = time.monotonic() + min(busy.retry_after, MAX_BUSY_REST)
                continue
            except _SourceFailedError as failure:
                self._drop(src, str(failure))
                continue
            except Exception as error:  # noqa: BLE001 - a bug must stop the run, not hang it
                self._finish(error)
                return
            finally:
                if src.fetching.get(index) is task:
                    del src.fetching[index]
                src.load -= 1
                if not handed_over:
                    self._release(src, index)

    async def _store(self, pool: HttpPool, src: _Src, index: int, body: bytearray) -> None:
        """Verify and write one received piece (in a thread); then account for it."""
        try:
            written = await asyncio.to_thread(self._store_piece, index, body)
        except asyncio.CancelledError:
            # The thread may still be reading the buffer: never hand it out again.
            self._verifying.release()
            self._checking.discard(index)
            self._release(src, index)
            raise
        except LicensingError as error:  # BadPieceError: wrong bytes for this index
            self._drop(src, f"bad piece {index}: {error}")
        except StoreError as error:
            self._finish(DownloadError(f"cannot store the download: {error}", self._result))
        except Exception as error:  # noqa: BLE001 - a bug must stop the run, not hang it
            self._finish(error)
        else:
            if written:
                try:
                    self._completed(src, index, len(body))
                except Exception as error:  # noqa: BLE001 - e.g. a failing progress callback
                    self._finish(error)
        pool.release(body)
        self._verifying.release()
        self._checking.discard(index)
        self._release(src, index)

    def _next_rest_end(self) -> float | None:
        now = time.monotonic()
        ends = [s.busy_until - now for s in self._sources if not s.dead and s.busy_until > now]
        return max(0.01, min(ends)) if ends else None

    def _completed(self, src: _Src, index: int, length: int) -> None:
        self._remaining.discard(index)
        self._pending.discard(index)
        for other in list(self._inflight.get(index, {})):
            task = other.fetching.get(index)
            if task is not None:
                task.cancel()
        result = self._result
        result.pieces_fetched.append(index)
        tally = result.bytes_by_peer if src.is_peer else result.bytes_by_web_seed
        tally[src.key] = tally.get(src.key, 0) + length
        self._pieces_done += 1
        self._bytes_done += length
        if self._progress is not None:
            self._progress(
                Progress(
                    bytes_done=self._bytes_done,
                    bytes_total=self._manifest.ciphertext_size,
                    pieces_done=self._pieces_done,
                    pieces_total=self._manifest.piece_count,
                )
            )
        if not self._remaining:
            self._finish()
        else:
            self._notify()

    def _store_piece(self, index: int, body: bytearray) -> bool:
        """In a worker thread: verify and write the piece, then hand it to ``on_piece``."""
        with memoryview(body) as view:
            if not self._work.write_piece(index, view):
                return False
            if self._on_piece is not None:
                self._on_piece(index, view)
        return True

    async def _fetch(self, pool: HttpPool, src: _Src, index: int) -> bytearray:
        manifest = self._manifest
        length = manifest.piece_length(index)
        if self._limiter is not None:
            await self._limiter.acquire(length)
        headers = {"Accept-Encoding": "identity"}
        if src.is_peer:
            url = piece_url(src.url, manifest.work_id, index)
            headers[LICENCE_HEADER] = self._licence_token
            headers[ORDER_HEADER] = sign_order(
                self._device,
                licence_id=self._licence.licence_id,
                peer_id=src.key,
                piece=index,
                byte_count=length,
                issued_at=int(self._clock()),
                random=self._random,
            )
        else:
            url = src.url
            headers["Range"] = range_header(manifest.piece_offset(index), length)
        try:
            response = await pool.get(
                url,
                headers,
                expected=length,
                stall_timeout=self._stall_timeout,
                max_redirects=0 if src.is_peer else MAX_REDIRECTS,
            )
        except StallError:
            raise _SourceFailedError(f"stalled: silent for {self._stall_timeout:g} s") from None
        except StatusError as error:
            self._refuse(src, index, error.status, error.body, error.headers)
        except LengthError as error:
            raise _SourceFailedError(f"piece {index}: {error}") from None
        except TruncatedError as error:
            raise _SourceFailedError(f"piece {index}: truncated ({error})") from None
        except FetchError as error:
            raise _SourceFailedError(f"HTTP failure: {error}") from None
        if not self._status_fits(src, response.status):
            pool.release(response.body)
            raise _SourceFailedError(
                f"piece {index}: HTTP {response.status}"
                + ("" if src.is_peer else " to a Range request: the server ignores ranges")
            )
        return response.body

    def _status_fits(self, src: _Src, status: int) -> bool:
        """Which success statuses a source may answer with."""
        if src.is_peer:
            return status == 200
        # A 200 to a Range request is the whole file, unless the file is one piece.
        return status == 206 or (status == 200 and self._manifest.piece_count == 1)

    def _refuse(
        self, src: _Src, index: int, status: int, body: bytes, headers: Mapping[str, str]
    ) -> NoReturn:
        code, message = parse_error(body) if src.is_peer else ("", "")
        if status == 404 and code == ErrorCode.PIECE_NOT_HELD:
            raise _NotHeldError
        if status == 429:
            retry = 1.0
            with contextlib.suppress(TypeError, ValueError):
                retry = float(headers.get("Retry-After", "1"))
            # A peer's header: "nan" or "inf" would park the source for ever.
            raise _BusyError(min(max(retry, 0.0), MAX_BUSY_REST) if math.isfinite(retry)
                             else 1.0)
        detail = f" {code}: {message}" if code else ""
        raise _SourceFailedError(f"piece {index}: HTTP {status}{detail}")
