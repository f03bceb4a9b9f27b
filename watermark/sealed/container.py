"""The sealed container: the one file a sealed work's pieces encrypt.

Layout: ``PMSEAL1\\n``, a 4-byte big-endian header length, the header (UTF-8 JSON), then
four zlib streams in header order:

============  =====================================================================
complement    int16, height x width x colour channels: the picture minus alpha x bump
extra         uint8, height x width x other channels (alpha), stored as it is
sealed        int32, rows x cols: alpha + scale x (sum of the cell's noise entries)
scale         uint8, rows x cols: each cell's mark scale (`params.MIN_SCALE`..255)
============  =====================================================================

It reaches an agent through pieces checked against the signed manifest, so a malformed
container is a defect or an attack: `read_container` checks every field and inflates each
stream to exactly the size the header implies, never more (a zlib bomb is refused, not
inflated).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from watermark.codec import Encoding
from watermark.planes import DEFAULT_MAX_PIXELS, MIN_SIDE
from watermark.sealed import streams
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.params import (
    CODE_BITS,
    LOOKUPS,
    MAX_TABLE_ENTRIES,
    MIN_TABLE_ENTRIES,
)

MAGIC: Final = b"PMSEAL1\n"
VERSION: Final = 2
MAX_HEADER_BYTES: Final = 16 << 20  # an ICC profile and EXIF can be large
_SECTIONS: Final = ("complement", "extra", "sealed", "scale")
_MODES: Final = {"L": (1, 1), "LA": (1, 2), "RGB": (3, 3), "RGBA": (3, 4)}
_FORMATS: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class SealedInfo:
    """The container's header: what a table must fit and what file unsealing writes."""

    width: int
    height: int
    mode: str
    cell: int
    table_size: int
    code_bits: int
    lookup_seed: bytes
    encoding: Encoding

    @property
    def rows(self) -> int:
        return self.height // self.cell

    @property
    def cols(self) -> int:
        return self.width // self.cell

    @property
    def colour(self) -> int:
        return _MODES[self.mode][0]

    @property
    def channels(self) -> int:
        return _MODES[self.mode][1]

    @property
    def content_type(self) -> str:
        """The media type of the file `unseal` writes."""
        return _FORMATS[self.encoding.format]


@dataclass(frozen=True)
class Container:
    info: SealedInfo
    complement: NDArray[np.int16]
    extra: NDArray[np.uint8]
    sealed: NDArray[np.int32]
    scale: NDArray[np.uint8]


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def write_container(container: Container) -> bytes:
    """The container's bytes (deterministic: the same arrays give the same bytes)."""
    info = container.info
    enc = info.encoding
    header = {
        "version": VERSION,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "cell": info.cell,
        "table_size": info.table_size,
        "lookups": LOOKUPS,
        "code_bits": info.code_bits,
        "lookup_seed": info.lookup_seed.hex(),
        "encoding": {
            "format": enc.format,
            "icc_profile": _b64(enc.icc_profile),
            "exif": _b64(enc.exif),
            "dpi": list(enc.dpi) if enc.dpi else None,
            "subsampling": enc.subsampling,
            "lossless": enc.lossless,
        },
    }
    return streams.write(MAGIC, header, [container.complement, container.extra,
                                         container.sealed, container.scale])


def _field(header: dict[str, Any], name: str, low: int, high: int) -> int:
    value = header.get(name)
    if type(value) is not int:
        raise SealedFormatError(f"sealed container: {name!r} is missing or not an integer")
    if not low <= value <= high:
        raise SealedFormatError(f"sealed container: {name!r} is outside {low}..{high}")
    return value


def _optional_bytes(encoding: dict[str, Any], name: str) -> bytes | None:
    value = encoding.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SealedFormatError(f"sealed container: encoding {name!r} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as error:
        raise SealedFormatError(f"sealed container: encoding {name!r} is not base64") from error


def _encoding(value: object) -> Encoding:
    if not isinstance(value, dict):
        raise SealedFormatError("sealed container: 'encoding' is not an object")
    fmt = value.get("format")
    if fmt not in _FORMATS:
        raise SealedFormatError(f"sealed container: cannot write format {fmt!r}")
    dpi = value.get("dpi")
    if dpi is not None and not (isinstance(dpi, list) and len(dpi) == 2 and all(
            type(d) in (int, float) and 0 < d < 1e6 for d in dpi)):
        raise SealedFormatError("sealed container: 'dpi' is not two positive numbers")
    subsampling = value.get("subsampling", -1)
    if type(subsampling) is not int or not -1 <= subsampling <= 2:
        raise SealedFormatError("sealed container: 'subsampling' is not -1..2")
    lossless = value.get("lossless", False)
    if type(lossless) is not bool:
        raise SealedFormatError("sealed container: 'lossless' is not true or false")
    return Encoding(format=fmt, icc_profile=_optional_bytes(value, "icc_profile"),
                    exif=_optional_bytes(value, "exif"),
                    dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
                    subsampling=subsampling, lossless=lossless)


def _header(data: bytes) -> tuple[SealedInfo, list[int], int]:
    header, lengths, position = streams.read_header(data, MAGIC, MAX_HEADER_BYTES,
                                                    "sealed container", len(_SECTIONS))
    if header.get("version") != VERSION:
        raise SealedFormatError(f"sealed container: unknown version {header.get('version')!r}")
    width = _field(header, "width", MIN_SIDE, 1 << 20)
    height = _field(header, "height", MIN_SIDE, 1 << 20)
    if width * height > DEFAULT_MAX_PIXELS:
        raise SealedFormatError("sealed container: more pixels than the library handles")
    mode = header.get("mode")
    if mode not in _MODES:
        raise SealedFormatError(f"sealed container: unknown mode {mode!r}")
    cell = _field(header, "cell", 2, 64)
    table_size = _field(header, "table_size", MIN_TABLE_ENTRIES, MAX_TABLE_ENTRIES)
    if table_size & (table_size - 1):
        raise SealedFormatError("sealed container: the table size is not a power of two")
    if header.get("lookups") != LOOKUPS:
        raise SealedFormatError("sealed container: unsupported number of lookups")
    code_bits = _field(header, "code_bits", 64, table_size)
    if code_bits != CODE_BITS:
        raise SealedFormatError("sealed container: unsupported code length")
    seed = header.get("lookup_seed")
    if not isinstance(seed, str) or len(seed) != 32:
        raise SealedFormatError("sealed container: 'lookup_seed' is not 16 bytes of hex")
    try:
        lookup_seed = bytes.fromhex(seed)
    except ValueError as error:
        raise SealedFormatError("sealed container: 'lookup_seed' is not hex") from error
    info = SealedInfo(width, height, mode, cell, table_size, code_bits, lookup_seed,
                      _encoding(header.get("encoding")))
    if info.encoding.format == "JPEG" and mode not in {"L", "RGB"}:
        raise SealedFormatError(f"sealed container: a JPEG is not written in mode {mode!r}")
    if info.rows < 1 or info.cols < 1:
        raise SealedFormatError("sealed container: no whole cell")
    return info, lengths, position


def container_info(data: bytes) -> SealedInfo:
    """The header of a sealed container, checked; the streams are not inflated."""
    return _header(data)[0]


def read_container(data: bytes) -> Container:
    """Every part of a sealed container, checked against its header."""
    info, lengths, position = _header(data)
    complement, extra, sealed, scale = streams.read_arrays(data, position, lengths, [
        ("complement", (info.height, info.width, info.colour), "<i2"),
        ("extra", (info.height, info.width, info.channels - info.colour), "u1"),
        ("sealed", (info.rows, info.cols), "<i4"),
        ("scale", (info.rows, info.cols), "u1"),
    ], "sealed container")
    return Container(info, complement.astype(np.int16), extra.astype(np.uint8),
                     sealed.astype(np.int32), scale.astype(np.uint8))
