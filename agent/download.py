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
* Piece choice, endgame and bans: ``picker.PiecePicker`` (rarest first; duplicates of
  the oldest requests once every missing piece is in flight, the first verified copy
  wins and the others are cancelled).
* Checks: the length announced and received, then the SHA-256 against the signed
  manifest (``WorkStore.write_piece``) before anything is written. A piece that fails
  its hash is banned at the source that sent it (only that piece: the source's other
  pieces stay usable) and fetched elsewhere; a source that keeps sending bad pieces
  loses the picker's trust and is dropped. A truncated or wrong-length body, garbage
  HTTP or an error status drops the source at once and its pieces are reassigned; one
  silent for ``stall_timeout`` seconds (default 10) is dropped as stalled.
  ``404 piece-not-held`` only clears that bit; ``429 busy`` rests the source for its
  ``Retry-After``.
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
from licensing.core.bitfield import BitfieldError, bitfield_full, check_bitfield

from .httpclient import (
    MAX_REDIRECTS,
    FetchError,
    HttpPool,
    LengthError,
    StallError,
    StatusError,
    TruncatedError,
)
from .picker import BannedPiece, DroppedSource, PiecePicker, SourceState
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
    #: pieces a source sent wrong, banned at that source only (the run went on)
    banned: list[BannedPiece] = field(default_factory=list)
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


@dataclass(eq=False)
class _Endpoint:
    """Where and how to ask one source, and its requests in flight."""

    url: str
    is_peer: bool
    fetching: dict[int, asyncio.Task[bytearray]] = field(default_factory=dict)


class Downloader:
    """Fetches the missing pieces of ``work`` from ``sources`` and ``web_seeds``.

    ``licence`` is the verified licence (``read_licence`` on this device) and
    ``licence_token`` its token, sent to peers with every order; ``device`` signs the
    orders. ``progress`` is called on the event loop after each verified piece;
    ``on_piece(index, ciphertext)`` in a worker thread right after a piece is written
    (e.g. to decrypt a large non-image work while it downloads; it must be thread-safe,
    and the view is valid only during the call: its buffer is reused).

    Which piece goes to which source is ``picker.PiecePicker``'s decision; this class
    does the requests, the checks and the writes, and tells the picker what happened.
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
        self._work = work
        self._manifest = work.manifest
        self._licence = licence
        self._licence_token = licence_token
        self._device = device
        self._max_connections = max_connections
        self._connections_per_source = connections_per_source
        self._stall_timeout = stall_timeout
        self._limiter = TokenBucket(rate_limit_bps) if rate_limit_bps else None
        self._endgame_copies = endgame_copies
        self._progress = progress
        self._on_piece = on_piece
        self._pool = pool
        self._clock = clock
        self._random = random
        self._result = DownloadResult()
        #: source key -> (bitfield, endpoint), in the order given
        self._given: dict[str, tuple[bytes, _Endpoint]] = {}
        count = self._manifest.piece_count
        for source in sources:
            if source.peer_id in self._given or source.peer_id == device.device_id:
                continue
            bits = bitfield_full(count)  # unknown: ask for anything, learn from 404s
            if source.bitfield is not None:
                try:
                    bits = check_bitfield(source.bitfield, count)
                except BitfieldError as error:
                    reason = f"bad bitfield: {error}"
                    self._result.dropped.append(DroppedSource(source.peer_id, reason))
                    continue
            self._given[source.peer_id] = (bits, _Endpoint(source.url, is_peer=True))
        for url in web_seeds:
            if url not in self._given:
                self._given[url] = (bitfield_full(count), _Endpoint(url, is_peer=False))
        # Run state (set up by run()).
        self._picker = self._new_picker([])
        self._endpoints: dict[SourceState, _Endpoint] = {}
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._error: BaseException | None = None
        self._bytes_done = 0
        self._pieces_done = 0
        self._verifying = asyncio.Semaphore(2 * max_connections)
        self._storing: set[asyncio.Task[None]] = set()

    def _new_picker(self, missing: Sequence[int]) -> PiecePicker:
        return PiecePicker(
            missing=missing,
            sources=[(key, bits) for key, (bits, _) in self._given.items()],
            max_connections=self._max_connections,
            connections_per_source=self._connections_per_source,
            endgame_copies=self._endgame_copies,
            random=self._random,
        )

    # -- the run ------------------------------------------------------------------

    async def run(self) -> DownloadResult:
        """Fetch every missing piece; return the result, or raise ``DownloadError``."""
        started = time.monotonic()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        missing = self._work.missing()
        self._pieces_done = self._work.held_count
        self._bytes_done = self._work.held_bytes
        self._picker = picker = self._new_picker(missing)
        self._endpoints = {src: self._given[src.key][1] for src in picker.sources}
        self._result.banned = picker.bans
        if picker.done:
            self._result.elapsed = time.monotonic() - started
            return self._result
        self._check_stuck()
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
            for endpoint in self._endpoints.values():
                for fetch in endpoint.fetching.values():
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

    def _check_stuck(self) -> None:
        """Stop with ``NoSourceError`` once only pieces no live source can give are left."""
        orphans = self._picker.orphans()
        if orphans is None or self._done.is_set():
            return
        shown = ", ".join(str(i) for i in orphans[:10]) + (" ..." if len(orphans) > 10 else "")
        reasons = "; ".join(f"{d.source}: {d.reason}" for d in self._result.dropped) or "none"
        message = (
            f"no remaining source holds {len(orphans)} missing piece(s) ({shown}); "
            f"dropped sources: {reasons}"
        )
        banned = [b for b in self._picker.bans if b.piece in set(orphans)]
        if banned:
            message += "; bad pieces: " + "; ".join(
                f"{b.source} sent piece {b.piece} wrong" for b in banned[:10]
            )
        self._finish(NoSourceError(message, self._result, orphans))

    def _drop(self, src: SourceState, reason: str) -> None:
        if self._picker.drop(src, reason):
            self._dropped(src)

    def _dropped(self, src: SourceState) -> None:
        """``src`` was dropped by the picker: record it and cancel its requests."""
        self._result.dropped.append(self._picker.dropped[-1])
        for task in list(self._endpoints[src].fetching.values()):
            task.cancel()
        self._check_stuck()
        self._notify()

    def _release(self, src: SourceState, index: int) -> None:
        self._picker.release(src, index)
        self._check_stuck()
        self._notify()

    # -- working ------------------------------------------------------------------

    async def _worker(self, pool: HttpPool) -> None:
        """One connection's loop: choose, fetch; verification and storage run behind it."""
        picker = self._picker
        while not self._done.is_set():
            choice = picker.pick(time.monotonic())
            if choice is None:
                wake = self._wake
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(picker.rest_ends_in(time.monotonic())):
                        await wake.wait()
                continue
            src, index = choice.source, choice.index
            if choice.endgame:
                self._result.endgame_requests += 1
            endpoint = self._endpoints[src]
            task = asyncio.create_task(self._fetch(pool, src, endpoint, index))
            endpoint.fetching[index] = task
            handed_over = False
            try:
                body = await task
                # The connection is free as soon as the body is in: verifying and writing
                # the piece runs behind it, bounded by the number of buffers in flight.
                await self._verifying.acquire()
                if not picker.checking(index):
                    self._verifying.release()
                    pool.release(body)
                    continue
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
                picker.not_held(src, index)
                continue
            except _BusyError as busy:
                picker.rest(src, time.monotonic() + min(busy.retry_after, MAX_BUSY_REST))
                continue
            except _SourceFailedError as failure:
                self._drop(src, str(failure))
                continue
            except Exception as error:  # noqa: BLE001 - a bug must stop the run, not hang it
                self._finish(error)
                return
            finally:
                if endpoint.fetching.get(index) is task:
                    del endpoint.fetching[index]
                picker.answered(src)
                if not handed_over:
                    self._release(src, index)

    async def _store(self, pool: HttpPool, src: SourceState, index: int, body: bytearray) -> None:
        """Verify and write one received piece (in a thread); then account for it."""
        picker = self._picker
        try:
            written = await asyncio.to_thread(self._store_piece, index, body)
        except asyncio.CancelledError:
            # The thread may still be reading the buffer: never hand it out again.
            self._verifying.release()
            picker.checked(index)
            self._release(src, index)
            raise
        except LicensingError as error:  # BadPieceError: wrong bytes for this index
            if picker.bad_piece(src, index, str(error)):
                self._dropped(src)
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
        picker.checked(index)
        self._release(src, index)

    def _completed(self, src: SourceState, index: int, length: int) -> None:
        for other in self._picker.verified(src, index):
            task = self._endpoints[other].fetching.get(index)
            if task is not None:
                task.cancel()
        result = self._result
        result.pieces_fetched.append(index)
        tally = result.bytes_by_peer if self._endpoints[src].is_peer else result.bytes_by_web_seed
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
        if self._picker.done:
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

    async def _fetch(
        self, pool: HttpPool, src: SourceState, endpoint: _Endpoint, index: int
    ) -> bytearray:
        manifest = self._manifest
        length = manifest.piece_length(index)
        if self._limiter is not None:
            await self._limiter.acquire(length)
        headers = {"Accept-Encoding": "identity"}
        if endpoint.is_peer:
            url = piece_url(endpoint.url, manifest.work_id, index)
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
            url = endpoint.url
            headers["Range"] = range_header(manifest.piece_offset(index), length)
        try:
            response = await pool.get(
                url,
                headers,
                expected=length,
                stall_timeout=self._stall_timeout,
                max_redirects=0 if endpoint.is_peer else MAX_REDIRECTS,
            )
        except StallError:
            raise _SourceFailedError(f"stalled: silent for {self._stall_timeout:g} s") from None
        except StatusError as error:
            self._refuse(endpoint, index, error.status, error.body, error.headers)
        except LengthError as error:
            raise _SourceFailedError(f"piece {index}: {error}") from None
        except TruncatedError as error:
            raise _SourceFailedError(f"piece {index}: truncated ({error})") from None
        except FetchError as error:
            raise _SourceFailedError(f"HTTP failure: {error}") from None
        if not self._status_fits(endpoint, response.status):
            pool.release(response.body)
            raise _SourceFailedError(
                f"piece {index}: HTTP {response.status}"
                + ("" if endpoint.is_peer else " to a Range request: the server ignores ranges")
            )
        return response.body

    def _status_fits(self, endpoint: _Endpoint, status: int) -> bool:
        """Which success statuses a source may answer with."""
        if endpoint.is_peer:
            return status == 200
        # A 200 to a Range request is the whole file, unless the file is one piece.
        return status == 206 or (status == 200 and self._manifest.piece_count == 1)

    def _refuse(
        self, endpoint: _Endpoint, index: int, status: int, body: bytes, headers: Mapping[str, str]
    ) -> NoReturn:
        code, message = parse_error(body) if endpoint.is_peer else ("", "")
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
