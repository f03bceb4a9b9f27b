"""What both sealed containers share: a magic, a JSON header, then exact zlib streams.

Both reach an agent through pieces checked against a signed manifest, so anything
malformed is a defect or an attack: the header is bounded before it is parsed, and each
stream inflates to exactly the size the header implies, never further (a zlib bomb is
refused, not inflated).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.errors import SealedFormatError


def little_endian(array: NDArray[Any]) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def write(magic: bytes, header: dict[str, Any], arrays: list[NDArray[Any]]) -> bytes:
    """The container's bytes (deterministic: the same arrays give the same bytes); the
    header gets the streams' lengths."""
    streams = [zlib.compress(little_endian(array), 6) for array in arrays]
    header = {**header, "streams": [len(stream) for stream in streams]}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return magic + len(text).to_bytes(4, "big") + text + b"".join(streams)


def read_header(data: bytes, magic: bytes, limit: int, what: str, count: int
                ) -> tuple[dict[str, Any], list[int], int]:
    """The header object, its streams' lengths (`count` of them) and where they start."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SealedFormatError(f"a {what} is bytes")
    head = bytes(data[: len(magic) + 4])
    if len(head) < len(magic) + 4 or head[: len(magic)] != magic:
        raise SealedFormatError(f"not a {what}")
    length = int.from_bytes(head[len(magic):], "big")
    start = len(magic) + 4
    if length > limit or start + length > len(data):
        raise SealedFormatError(f"{what}: the header is cut short or too long")
    try:
        header = json.loads(bytes(data[start : start + length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise SealedFormatError(f"{what}: the header is not JSON") from error
    if not isinstance(header, dict):
        raise SealedFormatError(f"{what}: the header is not an object")
    streams = header.get("streams")
    if not (isinstance(streams, list) and len(streams) == count
            and all(type(n) is int and 0 < n <= len(data) for n in streams)):
        raise SealedFormatError(f"{what}: 'streams' is not {count} stream lengths")
    return header, streams, start + length


def inflate(stream: bytes, size: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(stream, max(size, 1))  # 0 would mean no limit
    except zlib.error as error:
        raise SealedFormatError(f"{what} stream is damaged") from error
    if len(out) != size or inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise SealedFormatError(f"{what} stream has the wrong size")
    return out


def read_arrays(data: bytes, position: int, streams: list[int],
                shapes: list[tuple[str, tuple[int, ...], str]], what: str
                ) -> list[NDArray[Any]]:
    """Every stream as an array of its (name, shape, dtype), which must fill the file."""
    if position + sum(streams) != len(data):
        raise SealedFormatError(f"{what}: the streams do not fill the file exactly")
    arrays = []
    for length, (name, shape, dtype) in zip(streams, shapes, strict=True):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = inflate(bytes(data[position : position + length]), size, f"{what}: the {name}")
        position += length
        arrays.append(np.frombuffer(raw, dtype=dtype).reshape(shape))
    return arrays
