"""What a request may say, checked before anything is stored: every refusal names the
field, in the platform's one error shape."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from licensing.core.bitfield import BitfieldError, check_bitfield
from peerindex.records import valid_host, valid_version
from peerindex.schema import MAX_HOLDINGS_PER_ANNOUNCE
from peerindex.store import Held, WorkEntry

WORK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_BODY = 1 << 20
MAX_SOURCES = 200
MAX_FIELDS = 20


class InvalidError(Exception):
    def __init__(self, message: str, *, field: str = "", code: str = "invalid",
                 status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class AnnounceBody:
    port: int
    host: str
    version: str
    replace: bool
    holdings: list[tuple[str, str]]  # (work, bitfield as sent)


def _strict_int(value: Any, field: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise InvalidError(f"{field} is a whole number from {low} to {high}.", field=field)
    return value


def announce_body(raw: bytes) -> AnnounceBody:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[...
        raise InvalidError("The body is not JSON (or nested too deep).") from None
    if not isinstance(data, dict):
        raise InvalidError("The body is a JSON object.")
    port = _strict_int(data.get("port"), "port", 1, 65535)
    host = data.get("host", "")
    if not isinstance(host, str) or (host and not valid_host(host)):
        raise InvalidError("host is an IP address or a host name.", field="host")
    version = data.get("version", "")
    if not isinstance(version, str) or not valid_version(version):
        raise InvalidError("version is printable text of at most 40 characters.", field="version")
    replace = data.get("replace", False)
    if not isinstance(replace, bool):
        raise InvalidError("replace is true or false.", field="replace")
    listed = data.get("holdings", [])
    if not isinstance(listed, list):
        raise InvalidError("holdings is a list.", field="holdings")
    if len(listed) > MAX_HOLDINGS_PER_ANNOUNCE:
        raise InvalidError(f"At most {MAX_HOLDINGS_PER_ANNOUNCE} works per announce.",
                      field="holdings")
    holdings: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(listed):
        if not isinstance(item, dict):
            raise InvalidError("Each holding is an object.", field=f"holdings[{index}]")
        work, bits = item.get("work"), item.get("bitfield")
        if not isinstance(work, str) or not WORK_ID.fullmatch(work):
            raise InvalidError("work is a work's id.", field=f"holdings[{index}].work")
        if work in seen:
            raise InvalidError("A work is listed twice.", field=f"holdings[{index}].work")
        if not isinstance(bits, str):
            raise InvalidError("bitfield is base64 text.", field=f"holdings[{index}].bitfield")
        seen.add(work)
        holdings.append((work, bits))
    return AnnounceBody(port, host, version, replace, holdings)


def held(work: str, bits: str, entry: WorkEntry, field: str, *, urlsafe: bool = False) -> Held:
    """A checked holding: the bitfield well formed for the work's pieces, stored in the
    platform's canonical base64 (and not at all when every piece is held)."""
    if bits == "" and urlsafe:
        return Held(work, entry.pieces, "")
    expected = (entry.pieces + 7) // 8
    if len(bits) > 4 * expected + 8:
        raise InvalidError("The bitfield is too long for this work.", field=field)
    try:
        raw = (base64.urlsafe_b64decode(bits + "=" * (-len(bits) % 4)) if urlsafe
               else base64.b64decode(bits, validate=True))
        check_bitfield(raw, entry.pieces)
    except (binascii.Error, ValueError, BitfieldError) as exc:
        raise InvalidError(f"Not a bitfield for this work's {entry.pieces} pieces: {exc}",
                      field=field) from None
    have = int.from_bytes(raw, "big").bit_count()
    if have == entry.pieces:
        return Held(work, have, "")
    return Held(work, have, base64.b64encode(raw).decode() if have else "")


@dataclass(frozen=True, slots=True)
class Query:
    values: dict[str, str]

    @classmethod
    def parse(cls, raw: bytes) -> Query:
        """``a=1&b=&c``, percent and plus decoded, the last of a repeated name winning,
        at most ``MAX_FIELDS`` fields (as ``parse_qs`` with blank values kept, which this
        does in a sixth of the time: no decoding for the usual value that needs none)."""
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidError("The query string is malformed.") from None
        fields = text.split("&") if text else []
        if len(fields) > MAX_FIELDS:
            raise InvalidError("The query string is malformed.")
        values: dict[str, str] = {}
        for field in fields:
            if not field:
                continue
            name, _, value = field.partition("=")
            if "%" in field or "+" in field:
                name, value = unquote_plus(name), unquote_plus(value)
            values[name] = value
        return cls(values)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        # at most 9 digits before int(): a huge one would cost time and raise
        if not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
            raise InvalidError(f"{name} is a whole number from {low} to {high}.", field=name)
        return int(raw)

    def work(self) -> str:
        work = self.values.get("work", "")
        if not WORK_ID.fullmatch(work):
            raise InvalidError("work is a work's id.", field="work")
        return work
