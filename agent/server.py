"""The serving side of the peer wire: an aiohttp application that sends pieces.

``GET /v1/pieces/{work_id}/{index}`` with the buyer's licence and a signed order:
the peer checks both OFFLINE with the licensing core (the licence once per ``jti``,
cached by the ``OrderVerifier``; the order, its nonce and the revocation list every
time), sends the ciphertext piece, and then records the order in the outbox. Any
other request is refused with a JSON error (``wire.ErrorCode``). The checks, in order:

1. the path: a known work (404 ``unknown-work``), an index inside it (404
   ``piece-out-of-range``), a piece this peer holds (404 ``piece-not-held``);
2. both headers present (401 ``licence-missing`` / ``order-missing``);
3. upload capacity: a request that would wait more than ``max_upload_wait`` seconds
   behind the upload cap is shed (429 ``busy`` with ``Retry-After``);
4. the revocation list is fresh (503 ``revocations-stale`` if not: fail closed);
5. ``OrderVerifier.verify``: licence signature and times, revocation, same work and
   manifest, order signed by the licence's device, addressed to this peer, byte count,
   window, and last the nonce (400/401/403/409, see docs/PROTOCOL.md);
6. the order names the piece of the path (403 ``mismatch``).

``GET /v1/status`` says who this peer is and what it holds; ``POST /v1/gnutella``
carries the Gnutella fallback (``gnutella.GnutellaNode``) when one is given; ``POST
/v1/messages`` takes an end-to-end encrypted message for this device's member
(``direct_messages.MessageFolder``, docs/PROTOCOL.md "Direct messages") when one is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http import HttpProcessingError

from licensing.core import (
    BadSignatureError,
    ExpiredError,
    KeyRing,
    LicensingError,
    MalformedError,
    MismatchError,
    NotYetValidError,
    OrderVerifier,
    PieceOutOfRangeError,
    ReplayedError,
    RetiredKeyError,
    RevocationList,
    RevokedError,
    UnknownKeyError,
    WrongDeviceError,
    WrongPeerError,
)
from licensing.core.bitfield import bitfield_encode

from .outbox import OrderOutbox, OutboxError
from .ratelimit import TokenBucket
from .store import PieceStore, StoreError
from .wire import (
    GNUTELLA_PATH,
    LICENCE_HEADER,
    MAX_HEADER_FIELD,
    MAX_HEADERS,
    MAX_REQUEST_BODY,
    MAX_REQUEST_LINE,
    MESSAGE_PATH,
    ORDER_HEADER,
    PEER_HEADER,
    PIECE_CONTENT_TYPE,
    PIECE_ROUTE,
    PROTOCOL_VERSION,
    STATUS,
    STATUS_PATH,
    BodyError,
    ErrorCode,
    error_body,
    parse_index,
    parse_json_body,
)

if TYPE_CHECKING:
    from .direct_messages import MessageFolder
    from .gnutella import GnutellaNode

log = logging.getLogger(__name__)

#: a request that would wait longer than this behind the upload cap is shed (429)
DEFAULT_MAX_UPLOAD_WAIT = 5.0

# The licensing errors a client can cause, most specific first, and what they become.
_REFUSALS: tuple[tuple[type[LicensingError], ErrorCode], ...] = (
    (ReplayedError, ErrorCode.REPLAYED),
    (RevokedError, ErrorCode.REVOKED),
    (WrongPeerError, ErrorCode.WRONG_PEER),
    (WrongDeviceError, ErrorCode.WRONG_DEVICE),
    (MismatchError, ErrorCode.MISMATCH),
    (PieceOutOfRangeError, ErrorCode.PIECE_OUT_OF_RANGE),
    (ExpiredError, ErrorCode.EXPIRED),
    (NotYetValidError, ErrorCode.NOT_YET_VALID),
    (BadSignatureError, ErrorCode.BAD_SIGNATURE),
    (UnknownKeyError, ErrorCode.UNKNOWN_KEY),
    (RetiredKeyError, ErrorCode.UNKNOWN_KEY),
    (MalformedError, ErrorCode.MALFORMED_DOCUMENT),
)


def refusal_code(error: LicensingError) -> ErrorCode:
    """The wire error code for a licensing failure."""
    for kind, code in _REFUSALS:
        if isinstance(error, kind):
            return code
    return ErrorCode.REFUSED


def error_response(
    code: ErrorCode, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=STATUS[code],
        body=error_body(code, message),
        content_type="application/json",
        headers=headers,
    )


class PieceServer:
    """The state behind the application: store, verifier, outbox, cap."""

    def __init__(
        self,
        *,
        store: PieceStore,
        device_id: str,
        keyring_provider: Callable[[], KeyRing],
        revocations_provider: Callable[[], RevocationList],
        outbox: OrderOutbox,
        upload_limit_bps: float | None = None,
        max_upload_wait: float = DEFAULT_MAX_UPLOAD_WAIT,
        gnutella: GnutellaNode | None = None,
        clock: Callable[[], float] = time.time,
        on_served: Callable[[str, str, int], None] | None = None,
        messages: MessageFolder | None = None,
    ) -> None:
        """``on_served(work_id, device_id, byte_count)`` is told of every piece delivered
        (``serve``'s status line counts them); it runs on the event loop, so keep it cheap."""
        self.store = store
        self.on_served = on_served
        #: set once the platform's index lists this peer's holdings (``status`` says so:
        #: a buyer asking the index before then does not find this peer yet)
        self.announced = False
        self.device_id = device_id
        self.outbox = outbox
        self.gnutella = gnutella
        self.messages = messages
        self._keyring_provider = keyring_provider
        self._revocations_provider = revocations_provider
        self._clock = clock
        self._max_upload_wait = max_upload_wait
        self.limiter = TokenBucket(upload_limit_bps) if upload_limit_bps else None
        self._ring: KeyRing | None = None
        self._verifier: OrderVerifier | None = None

    def app(self) -> web.Application:
        """The serving peer's application. Start it with ``start_server``."""
        app = web.Application(client_max_size=MAX_REQUEST_BODY, middlewares=[_json_errors])
        app.router.add_get(PIECE_ROUTE, self.get_piece)
        app.router.add_get(STATUS_PATH, self.status)
        app.router.add_post(GNUTELLA_PATH, self.gnutella_message)
        app.router.add_post(MESSAGE_PATH, self.direct_message)
        return app

    def verifier(self) -> OrderVerifier:
        """The order verifier for the current key ring (licences re-verified if it changed)."""
        ring = self._keyring_provider()
        if self._verifier is None:
            self._verifier = OrderVerifier(keyring=ring, peer_id=self.device_id)
        elif ring is not self._ring:
            self._verifier.replace_keyring(ring)
        self._ring = ring
        return self._verifier

    async def get_piece(self, request: web.Request) -> web.StreamResponse:
        work_id = request.match_info["work_id"]
        index = parse_index(request.match_info["index"])
        if index is None:
            return error_response(ErrorCode.MALFORMED_REQUEST, "the piece index is not a number")
        try:
            work = self.store.get(work_id)
        except StoreError as error:
            log.warning("store error looking up %s: %s", work_id, error)
            return error_response(ErrorCode.STORE_ERROR, "this peer cannot read its store")
        if work is None:
            return error_response(ErrorCode.UNKNOWN_WORK, "this peer holds nothing of that work")
        if index >= work.piece_count:
            return error_response(
                ErrorCode.PIECE_OUT_OF_RANGE,
                f"the work has pieces 0..{work.piece_count - 1}",
            )
        if not work.have(index):
            return error_response(
                ErrorCode.PIECE_NOT_HELD, f"this peer does not hold piece {index}"
            )
        licence_token = request.headers.get(LICENCE_HEADER)
        if not licence_token:
            return error_response(
                ErrorCode.LICENCE_MISSING, f"send the licence in {LICENCE_HEADER}"
            )
        order_token = request.headers.get(ORDER_HEADER)
        if not order_token:
            return error_response(ErrorCode.ORDER_MISSING, f"send a signed order in {ORDER_HEADER}")
        length = work.manifest.piece_length(index)
        if self.limiter is not None:
            wait = self.limiter.delay_for(length)
            if wait > self._max_upload_wait:
                return error_response(
                    ErrorCode.BUSY,
                    "this peer is at its upload cap; try later or elsewhere",
                    headers={"Retry-After": str(max(1, round(wait - self._max_upload_wait)))},
                )
        now = int(self._clock())
        try:
            revocations = self._revocations_provider()
            if not revocations.is_fresh(now=now):
                raise ExpiredError("the revocation list is past its next update")
        except LicensingError as error:
            return error_response(
                ErrorCode.REVOCATIONS_STALE,
                f"this peer's revocation list is not current ({error}); try another peer",
            )
        try:
            order = self.verifier().verify(
                order_token,
                licence_token,
                manifest=work.manifest,
                revocations=revocations,
                now=now,
            )
        except LicensingError as error:
            return error_response(refusal_code(error), str(error) or type(error).__name__)
        if order.piece != index:
            return error_response(
                ErrorCode.MISMATCH, f"the order is for piece {order.piece}, not piece {index}"
            )
        try:
            data = await asyncio.to_thread(work.read_piece, index)
        except StoreError as error:
            log.warning("cannot serve piece %s of %s: %s", index, work_id, error)
            return error_response(ErrorCode.STORE_ERROR, "this peer cannot read that piece")
        if self.limiter is not None:
            await self.limiter.acquire(length)
        response = web.StreamResponse(
            headers={"Content-Type": PIECE_CONTENT_TYPE, PEER_HEADER: self.device_id}
        )
        response.content_length = length
        try:
            await response.prepare(request)
            await response.write(data)
            await response.write_eof()
        except ConnectionError:
            # The buyer went away mid-piece: nothing was delivered, nothing is recorded.
            return response
        try:
            self.outbox.append(order_token, order, work_id=work_id)
        except OutboxError:
            log.exception("could not record an order for piece %s of %s", index, work_id)
        if self.on_served is not None:
            self.on_served(work_id, order.device_id, length)
        return response

    async def status(self, request: web.Request) -> web.Response:
        works = []
        try:
            for work in self.store.works():
                works.append(
                    {
                        "work_id": work.work_id,
                        "pieces": work.piece_count,
                        "pieces_held": work.held_count,
                        "bitfield": bitfield_encode(work.bitfield()),
                    }
                )
        except StoreError as error:
            log.warning("store error in status: %s", error)
            return error_response(ErrorCode.STORE_ERROR, "this peer cannot read its store")
        return web.json_response(
            {"peer_id": self.device_id, "protocol": PROTOCOL_VERSION, "works": works,
             "announced": self.announced}
        )

    async def gnutella_message(self, request: web.Request) -> web.Response:
        if self.gnutella is None:
            return error_response(
                ErrorCode.NOT_FOUND, "this peer does not run the Gnutella fallback"
            )
        raw = await request.read()
        try:
            message = parse_json_body(raw)
        except BodyError as error:
            return error_response(
                ErrorCode.MALFORMED_REQUEST, f"a Gnutella message is a JSON object ({error})"
            )
        from .gnutella import GnutellaError

        try:
            answer = await self.gnutella.handle(message)
        except GnutellaError as error:
            return error_response(ErrorCode.MALFORMED_REQUEST, str(error))
        return web.json_response(answer)


    async def direct_message(self, request: web.Request) -> web.Response:
        """Take a sealed message for this device (body ``{"document": ...}``): checked
        and stored by ``MessageFolder.receive``; the same envelope again answers 200."""
        if self.messages is None:
            return error_response(ErrorCode.NOT_FOUND, "this peer does not take messages")
        try:
            body = parse_json_body(await request.read())
        except BodyError as error:
            return error_response(ErrorCode.MALFORMED_REQUEST,
                                  f"a message is a JSON object ({error})")
        if not isinstance(body, dict) or set(body) != {"document"}:
            return error_response(ErrorCode.MALFORMED_REQUEST,
                                  'a message is {"document": <signed envelope>}')
        from .direct_messages import MODE_DIRECT, InboxFullError, RefusedError
        from .platform import PlatformError, PlatformUnreachableError

        try:
            envelope, stored = await asyncio.to_thread(
                self.messages.receive, body["document"], mode=MODE_DIRECT)
        except RefusedError as error:
            return error_response(ErrorCode.REFUSED, str(error))
        except InboxFullError as error:
            return error_response(ErrorCode.BUSY, str(error), headers={"Retry-After": "3600"})
        except LicensingError as error:
            return error_response(refusal_code(error), str(error) or type(error).__name__)
        except (PlatformError, PlatformUnreachableError):
            return error_response(ErrorCode.BUSY, "this peer cannot check the sender now; "
                                  "send it through the platform's relay",
                                  headers={"Retry-After": "60"})
        return web.json_response({"message_id": envelope.message_id, "stored": stored},
                                 status=201 if stored else 200)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal is JSON, including the router's own 404/405/413."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = {
            404: ErrorCode.NOT_FOUND,
            405: ErrorCode.METHOD_NOT_ALLOWED,
            413: ErrorCode.REQUEST_TOO_LARGE,
        }.get(error.status, ErrorCode.MALFORMED_REQUEST)
        return error_response(code, error.reason or "refused")


#: seconds a new connection has to send a complete request head
HEAD_TIMEOUT = 10.0
#: seconds an idle keep-alive connection is kept between requests
IDLE_TIMEOUT = 15.0
#: connections one remote address may hold open at once
MAX_CONNECTIONS_PER_ADDRESS = 64


class ConnectionGuard:
    """Counts open connections per remote address, to refuse one address hoarding them."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if count >= self.per_address:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)


class _GuardedConnection(asyncio.Protocol):
    """aiohttp's request handler behind a head deadline and a per-address cap.

    aiohttp closes a keep-alive connection idle between requests (``IDLE_TIMEOUT``) but
    waits for ever for the first bytes of a new one, so half-open connections pile up.
    Here a connection that has not sent a complete request head (up to the blank line)
    within ``head_timeout`` seconds is closed, and an address over its cap is closed at
    once. Everything else goes to aiohttp's handler unchanged.
    """

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard,
                 head_timeout: float) -> None:
        self._inner = inner
        self._guard = guard
        self._head_timeout = head_timeout
        self._address: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(address):
            self._refused = True
            REFUSALS_LOG.warning("refused a connection from %s: over %d open connections",
                                 address, self._guard.per_address)
            transport.close()
            return
        self._address = address
        self._timer = asyncio.get_running_loop().call_later(
            self._head_timeout, self._too_slow, transport)
        self._inner.connection_made(transport)

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        REFUSALS_LOG.warning("closed a connection from %s: no request head in %g s",
                             self._address, self._head_timeout)
        transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._refused else self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._address is not None:
            self._guard.release(self._address)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self._refused:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            self._inner.resume_writing()


@dataclass
class RunningServer:
    """A started application: where it listens, and how to stop it."""

    runner: web.AppRunner
    server: asyncio.Server
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        await self.runner.cleanup()
        await self.server.wait_closed()


class OneLineRefusals(logging.Filter):
    """A refused request is one log line, and at most ``per_minute`` of them a minute.

    aiohttp logs every request its parser refuses (random bytes, a TLS hello on the
    HTTP port, a smuggling attempt) with a full traceback, so a scan could fill a
    seeder's log. Here such a record (an ``HttpProcessingError``) keeps its first line
    and the parser's reason, loses the traceback, and past the rate it is counted
    instead of written; the count goes into the next line that is written.
    """

    def __init__(self, *, per_minute: int = 10, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        super().__init__()
        self._per_minute = per_minute
        self._clock = clock
        self._window = -60.0
        self._written = 0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not isinstance(record.exc_info[1], HttpProcessingError):
            return True  # not a refused request: a bug keeps its traceback
        now = self._clock()
        if now - self._window >= 60:
            self._window, self._written = now, 0
        if self._written >= self._per_minute:
            self._suppressed += 1
            return False
        self._written += 1
        error = record.exc_info[1]
        reason = " ".join(str(error).split())[:200] if error is not None else ""
        message = f"{record.getMessage()}: refused ({type(error).__name__}: {reason})"
        if self._suppressed:
            message += f"; {self._suppressed} more refused since the last line"
            self._suppressed = 0
        record.msg, record.args = message, None
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


#: the logger aiohttp's protocol writes refused requests to
REFUSALS_LOG = logging.getLogger("agent.server.refused")
REFUSALS_LOG.addFilter(OneLineRefusals())


async def start_server(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0, **limits: Any
) -> RunningServer:
    """Listen on ``host:port`` (0: any free port); returns the bound address.

    Request lines, header fields and header counts are bounded (``wire``); aiohttp's
    parser answers garbage with a 400 and closes the connection, logged as one line
    (``OneLineRefusals``).
    """
    options: dict[str, Any] = {
        "max_line_size": MAX_REQUEST_LINE,
        "max_field_size": MAX_HEADER_FIELD,
        "max_headers": MAX_HEADERS,
        "access_log": None,
        "logger": REFUSALS_LOG,
        "keepalive_timeout": IDLE_TIMEOUT,
        "shutdown_timeout": 1.0,
        "head_timeout": HEAD_TIMEOUT,
        "max_connections_per_address": MAX_CONNECTIONS_PER_ADDRESS,
    }
    options.update(limits)
    shutdown_timeout = options.pop("shutdown_timeout")
    head_timeout = float(options.pop("head_timeout"))
    guard = ConnectionGuard(int(options.pop("max_connections_per_address")))
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, **options)
    await runner.setup()
    handlers = runner.server
    assert handlers is not None  # set up above
    try:
        server = await asyncio.get_running_loop().create_server(
            lambda: _GuardedConnection(handlers(), guard, head_timeout), host, port)
    except OSError:
        await runner.cleanup()
        raise
    bound = server.sockets[0].getsockname()
    return RunningServer(runner=runner, server=server, host=host, port=int(bound[1]))
