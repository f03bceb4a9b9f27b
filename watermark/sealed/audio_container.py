"""The sealed container of a recording.

Layout: ``PMSEALA1``, a 4-byte big-endian header length, the header (UTF-8 JSON), then
three zlib streams:

============  =====================================================================
complement    int32, samples x channels: every channel minus the mix's atom part
sealed        int64, frames x atoms: coefficient + scale x (sum of noise entries)
scale         int64, frames x atoms: each atom's mark scale (1 .. 2**31)
============  =====================================================================

The header keeps what the file is written back as: WAV (its chunks before and after the
sample data), FLAC (its metadata blocks: stream info, comments, pictures), MP3 (its ID3
tags and bitrate) or Ogg Vorbis (its header pages and bitrate). As for
pictures, every field is checked and every stream inflated to exactly its stated size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from watermark.audio.codec import MAX_SAMPLES as CODEC_MAX_SAMPLES
from watermark.audio.params import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from watermark.sealed import streams
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.params import CODE_BITS, LOOKUPS, MAX_TABLE_ENTRIES, MIN_TABLE_ENTRIES

MAGIC: Final = b"PMSEALA1"
VERSION: Final = 2
MAX_HEADER_BYTES: Final = 32 << 20  # cover pictures
MAX_SAMPLES: Final = CODEC_MAX_SAMPLES
"""Frames: as many as the audio codec reads (mono at a high rate has the most)."""
_SUBTYPES: Final = {"PCM_16": 16, "PCM_24": 24}
_TYPES: Final = {"WAV": "audio/wav", "FLAC": "audio/flac", "MP3": "audio/mpeg"}
LOSSY: Final = frozenset({"MP3"})


@dataclass(frozen=True)
class SealedAudioInfo:
    """The header: what a table must fit and what file unsealing writes."""

    format: str
    subtype: str
    """The PCM the mark is added in: the file's own depth, 16-bit for MP3 and Vorbis."""
    rate: int
    channels: int
    samples: int
    table_size: int
    code_bits: int
    lookup_seed: bytes
    before: bytes
    """WAV: the bytes before the sample data; FLAC: the metadata blocks."""
    data_length: int
    after: bytes
    bitrate: int | None = None
    """MP3 and Vorbis: the bitrate (kbit/s) the copy is encoded at, as a marked copy is."""

    @property
    def bits(self) -> int:
        return _SUBTYPES[self.subtype]

    @property
    def content_type(self) -> str:
        return _TYPES[self.format]


@dataclass(frozen=True)
class AudioContainer:
    info: SealedAudioInfo
    complement: NDArray[np.int32]
    sealed: NDArray[np.int64]
    scale: NDArray[np.int64]


def write_audio_container(container: AudioContainer) -> bytes:
    info = container.info
    header = {
        "version": VERSION, "format": info.format, "subtype": info.subtype, "rate": info.rate,
        "channels": info.channels, "samples": info.samples, "table_size": info.table_size,
        "lookups": LOOKUPS, "code_bits": info.code_bits, "lookup_seed": info.lookup_seed.hex(),
        "before": base64.b64encode(info.before).decode("ascii"),
        "data_length": info.data_length,
        "after": base64.b64encode(info.after).decode("ascii"),
        "bitrate": info.bitrate,
    }
    return streams.write(MAGIC, header, [container.complement, container.sealed,
                                         container.scale])


def _integer(header: dict[str, Any], name: str, low: int, high: int) -> int:
    value = header.get(name)
    if type(value) is not int or not low <= value <= high:
        raise SealedFormatError(f"sealed recording: {name!r} is not an integer in {low}..{high}")
    return value


def _bytes(header: dict[str, Any], name: str) -> bytes:
    value = header.get(name)
    if not isinstance(value, str):
        raise SealedFormatError(f"sealed recording: {name!r} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as error:
        raise SealedFormatError(f"sealed recording: {name!r} is not base64") from error


def _header(data: bytes) -> tuple[SealedAudioInfo, list[int], int]:
    header, lengths, position = streams.read_header(data, MAGIC, MAX_HEADER_BYTES,
                                                    "sealed recording", 3)
    if header.get("version") != VERSION:
        raise SealedFormatError("sealed recording: unknown header version")
    if header.get("format") not in _TYPES or header.get("subtype") not in _SUBTYPES:
        raise SealedFormatError("sealed recording: unknown format or sample type")
    table_size = _integer(header, "table_size", MIN_TABLE_ENTRIES, MAX_TABLE_ENTRIES)
    if table_size & (table_size - 1):
        raise SealedFormatError("sealed recording: the table size is not a power of two")
    if header.get("lookups") != LOOKUPS or header.get("code_bits") != CODE_BITS:
        raise SealedFormatError("sealed recording: unsupported lookups or code length")
    seed = header.get("lookup_seed")
    try:
        lookup_seed = bytes.fromhex(seed) if isinstance(seed, str) else b""
    except ValueError:
        lookup_seed = b""
    if len(lookup_seed) != 16:
        raise SealedFormatError("sealed recording: 'lookup_seed' is not 16 bytes of hex")
    info = SealedAudioInfo(
        format=header["format"], subtype=header["subtype"],
        rate=_integer(header, "rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        channels=_integer(header, "channels", 1, MAX_CHANNELS),
        samples=_integer(header, "samples", 1, MAX_SAMPLES),
        table_size=table_size, code_bits=CODE_BITS, lookup_seed=lookup_seed,
        before=_bytes(header, "before"),
        data_length=_integer(header, "data_length", 0, 4 * MAX_CHANNELS * MAX_SAMPLES),
        after=_bytes(header, "after"),
        bitrate=None if header.get("bitrate") is None else _integer(header, "bitrate", 8, 640))
    return info, lengths, position


def audio_container_info(data: bytes) -> SealedAudioInfo:
    return _header(data)[0]


def read_audio_container(data: bytes, frames: int, atoms: int) -> AudioContainer:
    """Every part, checked; `frames` and `atoms` follow from the header (see `audio`)."""
    info, lengths, position = _header(data)
    complement, sealed, scale = streams.read_arrays(data, position, lengths, [
        ("complement", (info.samples, info.channels), "<i4"),
        ("sealed", (frames, atoms), "<i8"),
        ("scale", (frames, atoms), "<i8"),
    ], "sealed recording")
    if scale.size and (scale.min() < 1 or scale.max() > 1 << 31):
        raise SealedFormatError("sealed recording: a mark scale is out of range")
    return AudioContainer(info, complement.astype(np.int32), sealed.astype(np.int64),
                          scale.astype(np.int64))
