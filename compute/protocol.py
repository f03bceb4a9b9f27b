"""The pipe protocol between the agent and a worker process, and the cache's file writes.

A message is one JSON line (an object), then raw byte blobs whose lengths the line
lists as ``"blobs"``; requests go to the worker's stdin, answers come from its stdout.
A worker answers each request with exactly one message, in order, and serves requests
until its stdin closes: a fresh worker gets one request, a kept worker (``Sandbox(...,
reuse_workers=True)``) many. Deliberately light (json and os only): every worker
imports it at start-up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from .errors import WorkerError

MAX_HEADER = 64 * 1024


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` owner-only (0600), whole or not at all."""
    # Unique per writer (process, thread, call): two writers of one path never collide.
    temporary = path.with_name(f".tmp-{os.getpid()}-{os.urandom(6).hex()}-{path.name}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class Stream(Protocol):
    """What ``read_message`` reads from: a binary pipe, or ``BytesReader``."""

    def readline(self, limit: int, /) -> bytes: ...
    def read(self, size: int, /) -> bytes: ...


def _header(line: bytes, *, what: str) -> tuple[dict[str, Any], list[int]]:
    try:
        header = json.loads(line)
    except ValueError:
        raise WorkerError(f"the {what} header is not JSON") from None
    if not isinstance(header, dict):
        raise WorkerError(f"the {what} header is not an object")
    sizes = header.pop("blobs", [])
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
        raise WorkerError(f"the {what} header's blob sizes are not sizes")
    return header, sizes


def read_message(
    stream: Stream, *, what: str, last: bool = True
) -> tuple[dict[str, Any], list[bytes]]:
    """One JSON line, then the byte blobs whose lengths its ``"blobs"`` member lists.

    ``last``: the stream must end after the message (a whole answer already read);
    a kept worker reads its requests with ``last=False``, one after another."""
    line = stream.readline(MAX_HEADER)
    if not line.endswith(b"\n"):
        raise WorkerError(f"the {what} has no complete header line")
    header, sizes = _header(line, what=what)
    blobs = [stream.read(size) for size in sizes]
    if any(len(blob) != size for blob, size in zip(blobs, sizes, strict=True)) or (
        last and stream.read(1)
    ):
        raise WorkerError(f"the {what} is not the length its header says")
    return header, blobs


def message_length(data: bytes, *, what: str) -> int | None:
    """The length of the message ``data`` starts with, once its header line is complete
    (``None`` before); what reads a kept worker's answers piece by piece uses it to know
    when an answer is whole. A header line longer than ``MAX_HEADER`` is an error."""
    end = data.find(b"\n", 0, MAX_HEADER)
    if end == -1:
        if len(data) >= MAX_HEADER:
            raise WorkerError(f"the {what} has no complete header line")
        return None
    _, sizes = _header(data[: end + 1], what=what)
    return end + 1 + sum(sizes)


def message(header: dict[str, Any], *blobs: bytes) -> bytes:
    """``header`` as a JSON line with the blobs' lengths, then the blobs."""
    body = {**header, "blobs": [len(blob) for blob in blobs]}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n" + b"".join(blobs)


class BytesReader:
    """``read_message`` over bytes already read (the worker's whole answer)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def readline(self, limit: int) -> bytes:
        end = self._data.find(b"\n", self._offset, self._offset + limit)
        end = self._offset + limit if end == -1 else end + 1
        line = self._data[self._offset : end]
        self._offset = end
        return line

    def read(self, size: int) -> bytes:
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk
