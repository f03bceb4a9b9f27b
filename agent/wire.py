"""The peer wire: paths, headers, limits and error codes shared by server and client.

docs/PROTOCOL.md is the prose version of this module. Every error a serving peer
returns is JSON ``{"error": {"code": <ErrorCode>, "message": <text>}}`` with the
status the code maps to in ``STATUS``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Final

PROTOCOL_VERSION: Final = "v1"
PIECE_ROUTE: Final = "/v1/pieces/{work_id}/{index}"
STATUS_PATH: Final = "/v1/status"
GNUTELLA_PATH: Final = "/v1/gnutella"
#: an end-to-end encrypted message for this peer's device (``direct_messages``)
MESSAGE_PATH: Final = "/v1/messages"

LICENCE_HEADER: Final = "X-Peermark-Licence"
ORDER_HEADER: Final = "X-Peermark-Order"
PEER_HEADER: Final = "X-Peermark-Peer"
PIECE_CONTENT_TYPE: Final = "application/octet-stream"

#: the largest licence token (TOKENS.md) plus slack: the server's header field limit
MAX_HEADER_FIELD: Final = 16 * 1024 + 256
#: the largest request line a peer accepts (work ids are short identifiers)
MAX_REQUEST_LINE: Final = 4096
MAX_HEADERS: Final = 64
#: the largest request body (Gnutella messages, and direct messages: an envelope is at most
#: 48 KiB)
MAX_REQUEST_BODY: Final = 64 * 1024
#: the largest error body a client reads before giving up on the message
MAX_ERROR_BODY: Final = 4096
#: piece indices are at most 131,071 (MAX_PIECES); six digits is plenty
_INDEX = re.compile(r"^(0|[1-9][0-9]{0,6})$")


class ErrorCode(StrEnum):
    """Why a serving peer refused a request (the ``code`` of its JSON error)."""

    MALFORMED_REQUEST = "malformed-request"
    MALFORMED_DOCUMENT = "malformed-document"
    LICENCE_MISSING = "licence-missing"
    ORDER_MISSING = "order-missing"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    REVOKED = "revoked"
    WRONG_DEVICE = "wrong-device"
    WRONG_PEER = "wrong-peer"
    MISMATCH = "mismatch"
    REFUSED = "refused"
    UNKNOWN_WORK = "unknown-work"
    PIECE_OUT_OF_RANGE = "piece-out-of-range"
    PIECE_NOT_HELD = "piece-not-held"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    REQUEST_TOO_LARGE = "request-too-large"
    REPLAYED = "replayed"
    BUSY = "busy"
    REVOCATIONS_STALE = "revocations-stale"
    STORE_ERROR = "store-error"


STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.MALFORMED_REQUEST: 400,
    ErrorCode.MALFORMED_DOCUMENT: 400,
    ErrorCode.LICENCE_MISSING: 401,
    ErrorCode.ORDER_MISSING: 401,
    ErrorCode.BAD_SIGNATURE: 401,
    ErrorCode.UNKNOWN_KEY: 401,
    ErrorCode.EXPIRED: 401,
    ErrorCode.NOT_YET_VALID: 401,
    ErrorCode.REVOKED: 403,
    ErrorCode.WRONG_DEVICE: 403,
    ErrorCode.WRONG_PEER: 403,
    ErrorCode.MISMATCH: 403,
    ErrorCode.REFUSED: 403,
    ErrorCode.UNKNOWN_WORK: 404,
    ErrorCode.PIECE_OUT_OF_RANGE: 404,
    ErrorCode.PIECE_NOT_HELD: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.REPLAYED: 409,
    ErrorCode.BUSY: 429,
    ErrorCode.REVOCATIONS_STALE: 503,
    ErrorCode.STORE_ERROR: 500,
}


def piece_path(work_id: str, index: int) -> str:
    return PIECE_ROUTE.format(work_id=work_id, index=index)


def piece_url(base_url: str, work_id: str, index: int) -> str:
    """The URL of piece ``index`` at the peer whose base URL is ``base_url``."""
    return base_url.rstrip("/") + piece_path(work_id, index)


def parse_index(text: str) -> int | None:
    """A piece index from a path segment, or None if it is not a plain decimal number."""
    return int(text) if _INDEX.match(text) else None


def error_body(code: ErrorCode, message: str) -> bytes:
    return json.dumps({"error": {"code": code.value, "message": message}}).encode()


def parse_error(body: bytes) -> tuple[str, str]:
    """``(code, message)`` from an error body; tolerant of anything a bad peer sends."""
    try:
        document = json.loads(body[:MAX_ERROR_BODY])
        error = document["error"]
        code, message = error["code"], error["message"]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return "unknown", body[:200].decode("utf-8", "replace")
    return str(code)[:64], str(message)[:500]


def range_header(offset: int, length: int) -> str:
    """The HTTP ``Range`` value for ``length`` bytes at ``offset`` (web seeds)."""
    return f"bytes={offset}-{offset + length - 1}"


#: how deeply a peer's JSON may nest (the Gnutella messages need 3 levels)
MAX_JSON_DEPTH: Final = 16


class BodyError(ValueError):
    """A peer's body that is not JSON this protocol accepts (too large, too deep, broken)."""


def parse_json_body(raw: bytes, *, max_size: int = MAX_REQUEST_BODY,
                    max_depth: int = MAX_JSON_DEPTH) -> object:
    """A peer's JSON body: size checked first, then parsed, then its depth bounded.

    The size bound keeps the parse itself cheap (the C decoder is linear); nesting past
    the interpreter's recursion limit makes it raise ``RecursionError``, caught here
    like any other parse failure, and anything deeper than ``max_depth`` is refused
    after an iterative walk. Every failure is a ``BodyError``, never a crash.
    """
    if len(raw) > max_size:
        raise BodyError(f"the body is larger than {max_size} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BodyError(f"not JSON: {str(error)[:100]}") from None
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise BodyError(f"the JSON nests deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
    return value
