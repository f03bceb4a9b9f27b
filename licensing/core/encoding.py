"""Strict encodings shared by every document: base64url, JSON and claim readers.

Signed documents are only ever parsed from untrusted bytes, so everything here is
strict: base64url must be canonical and unpadded, JSON must not repeat a member
or contain a float or NaN, and a claim set may contain only the claims its kind
defines. Every failure is a ``MalformedError``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from .errors import MalformedError

_HEX_CHARS = re.compile(r"^[0-9a-f]*$")
# Identifiers (work ids, licence ids, peer ids, device ids): printable ASCII, no spaces.
_IDENTIFIER = re.compile(r"^[\x21-\x7e]+$")
MAX_IDENTIFIER_LENGTH = 128


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# One translation: base64url's "-" and "_" become standard "+" and "/", and the
# characters unpadded base64url must not contain ("+", "/", "=") become "*", which
# the strict decoder refuses.
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"=", b"==", b"===")
# The last character of unpadded base64url must leave no stray bits: with one
# "=" missing its low 2 bits are zero, with two missing its low 4 bits are zero.
_CANONICAL_ENDINGS = (b"", b"AEIMQUYcgkosw048", b"AQgw")


def b64url_decode_bytes(data: bytes, *, what: str = "value") -> bytes:
    """Decode canonical, unpadded base64url bytes (the JWS segment encoding).

    The same rules as joserfc's ``urlsafe_b64decode`` (no ``+``, ``/`` or ``=``,
    canonical last character), decoded in C by ``binascii`` in strict mode.
    """
    pad = -len(data) % 4
    if pad == 3 or (pad and data[-1] not in _CANONICAL_ENDINGS[pad]):
        raise MalformedError(f"{what} is not canonical unpadded base64url")
    try:
        return binascii.a2b_base64(
            data.translate(_URLSAFE_TO_STANDARD) + _PADDING[pad], strict_mode=True
        )
    except binascii.Error as error:
        raise MalformedError(f"{what} is not canonical unpadded base64url") from error


def b64url_decode(text: object, *, length: int | None = None, what: str = "value") -> bytes:
    """Decode canonical, unpadded base64url text; optionally demand an exact byte length."""
    if not isinstance(text, str) or not text.isascii():
        raise MalformedError(f"{what} is not unpadded base64url")
    data = b64url_decode_bytes(text.encode("ascii"), what=what)
    if length is not None and len(data) != length:
        raise MalformedError(f"{what} must be {length} bytes, not {len(data)}")
    return data


def hex_decode(text: object, *, length: int, what: str = "value") -> bytes:
    """Decode lowercase hex of exactly ``length`` bytes."""
    if not isinstance(text, str) or len(text) != 2 * length or not _HEX_CHARS.fullmatch(text):
        raise MalformedError(f"{what} must be {2 * length} lowercase hex digits")
    return bytes.fromhex(text)


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes we sign: sorted members, no whitespace, ASCII only, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def _refuse_constant(name: str) -> NoReturn:
    raise MalformedError(f"JSON constant {name} is not allowed")


def _refuse_float(text: str) -> NoReturn:
    raise MalformedError(f"JSON number {text[:20]!r} is not an integer")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedError("JSON object repeats a member")
    return result


_JSON_SPACE = " \t\n\r"
# Built once (immutable configuration): json.loads with hooks would build a decoder per call.
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_members,
    parse_float=_refuse_float,
    parse_constant=_refuse_constant,
)


def strict_json_object(data: bytes | str, *, what: str = "document") -> dict[str, Any]:
    """Parse a UTF-8 JSON object strictly: no repeated members, floats, NaN or deep nesting."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if text[:1] in _JSON_SPACE:
            text = text.lstrip(_JSON_SPACE)
        # raw_decode, unlike decode, skips two regular-expression passes (JWS payloads
        # carry no surrounding whitespace); trailing data is checked just below.
        value, end = _STRICT_DECODER.raw_decode(text)
    except MalformedError:
        raise
    except (ValueError, TypeError, RecursionError) as error:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError
        # comes from deeply nested arrays.
        raise MalformedError(f"{what} is not valid JSON") from error
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise MalformedError(f"{what} has data after its JSON value")
    if not isinstance(value, dict):
        raise MalformedError(f"{what} must be a JSON object")
    return value


def check_identifier(value: object, *, what: str) -> str:
    """An opaque identifier: 1..128 printable ASCII characters, no spaces."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_IDENTIFIER_LENGTH
        or not _IDENTIFIER.fullmatch(value)
    ):
        raise MalformedError(f"{what} must be 1-{MAX_IDENTIFIER_LENGTH} printable ASCII characters")
    return value


class ClaimReader:
    """Typed, strict access to a claim set whose allowed members are known.

    Constructing the reader refuses any claim outside ``required | optional`` and any
    missing required claim, so a document kind's claim set is closed.
    """

    def __init__(
        self,
        claims: Mapping[str, Any],
        *,
        required: Iterable[str],
        optional: Iterable[str] = (),
        what: str = "document",
    ) -> None:
        required_set = required if isinstance(required, frozenset) else frozenset(required)
        if claims.keys() != required_set:
            allowed = required_set | frozenset(optional)
            unexpected = sorted(set(claims) - allowed)
            if unexpected:
                names = ", ".join(unexpected)[:200]
                raise MalformedError(f"{what} has unexpected claims: {names}")
            missing = sorted(required_set - set(claims))
            if missing:
                raise MalformedError(f"{what} lacks claims: {', '.join(missing)}")
        self._claims = claims
        self._what = what

    def has(self, name: str) -> bool:
        return name in self._claims

    def raw(self, name: str) -> Any:
        return self._claims[name]

    def integer(self, name: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
        value = self._claims[name]
        # bool is an int in Python; a JSON true is not a number.
        if type(value) is not int or not minimum <= value <= maximum:
            raise MalformedError(f"{self._what} claim {name!r} must be an integer in range")
        return value

    def boolean(self, name: str) -> bool:
        value = self._claims[name]
        if type(value) is not bool:
            raise MalformedError(f"{self._what} claim {name!r} must be true or false")
        return value

    def identifier(self, name: str) -> str:
        return check_identifier(self._claims[name], what=f"{self._what} claim {name!r}")

    def b64url(self, name: str, *, length: int | None = None) -> bytes:
        return b64url_decode(self._claims[name], length=length, what=f"{self._what} claim {name!r}")

    def hex(self, name: str, *, length: int) -> bytes:
        return hex_decode(self._claims[name], length=length, what=f"{self._what} claim {name!r}")

    def identifier_list(self, name: str, *, max_items: int) -> tuple[str, ...]:
        value = self._claims[name]
        if not isinstance(value, list) or len(value) > max_items:
            raise MalformedError(f"{self._what} claim {name!r} must be a list of ids")
        items = tuple(check_identifier(v, what=f"{self._what} claim {name!r}") for v in value)
        if len(set(items)) != len(items):
            raise MalformedError(f"{self._what} claim {name!r} repeats an entry")
        return items
