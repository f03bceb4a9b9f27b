"""The zip container of an EPUB, read safely and written deterministically.

Reading takes the central directory from `zipfile` and inflates every member itself, from
the local header on, so that the limits in `limits` hold whatever the entries declare:
sizes and ratios are checked from the directory before anything is inflated, entries that
overlap (a "non-recursive" zip bomb shares one compressed kernel among many entries) are
refused, and inflation stops one byte past the declared size. Names that could escape a
directory when unpacked (absolute, ``..``, backslashes, drive letters) are refused.

Writing keeps the master's member order and timestamps, puts ``mimetype`` first and
stored (OCF requires it), and deflates the rest at zlib's default level, so the same
input gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Final

from watermark.document.epub import limits
from watermark.errors import CorruptDocumentError, DocumentTooLargeError, UnsupportedDocumentError

MIMETYPE: Final = "mimetype"
_LOCAL_HEADER: Final = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE: Final = b"PK\x03\x04"
_EOCD: Final = struct.Struct("<4s4H2LH")
"""End of central directory: signature, disk, directory's disk, entries on this disk,
entries in all, directory size, directory offset, comment length."""
_EOCD_SIGNATURE: Final = b"PK\x05\x06"
_EOCD_SEARCH: Final = _EOCD.size + 0xFFFF
"""The record is within this many bytes of the end (a comment is at most 65,535)."""
_ZIP64_LOCATOR: Final = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE: Final = b"PK\x06\x07"
_ZIP64_EOCD: Final = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE: Final = b"PK\x06\x06"
_CENTRAL: Final = struct.Struct("<4s6H3L5H2L")
_CENTRAL_SIGNATURE: Final = b"PK\x01\x02"
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_EPOCH: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Member:
    """One archive entry: its name, inflated bytes and the metadata a copy keeps."""

    name: str
    data: bytes
    date_time: tuple[int, int, int, int, int, int]
    compress_type: int
    external_attr: int
    create_system: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def _check_name(name: str) -> None:
    if (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
            or _DRIVE.match(name) or ".." in name.split("/")):
        raise CorruptDocumentError(f"unsafe member name in the archive: {name!r}")


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name as stored: UTF-8 if the entry's flag says so, else code page 437."""
    if info.flag_bits & 0x800:
        return info.orig_filename.encode("utf-8")
    return info.orig_filename.encode("cp437", "replace")


def _directory_bounds(raw: bytes) -> tuple[int, int, int]:
    """(entries declared, directory start, directory size) from the end-of-central-
    directory record (the zip64 one where the classic record defers to it), located as
    `zipfile` locates it; `CorruptDocumentError` if there is none."""
    at = raw.rfind(_EOCD_SIGNATURE, max(0, len(raw) - _EOCD_SEARCH))
    while at >= 0 and len(raw) - at < _EOCD.size:
        at = raw.rfind(_EOCD_SIGNATURE, max(0, len(raw) - _EOCD_SEARCH), at)
    if at < 0:
        raise CorruptDocumentError("not a whole zip archive: no end of central directory")
    _, _, _, here, total, size, offset, _ = _EOCD.unpack_from(raw, at)
    end = at
    if 0xFFFF in (here, total) or 0xFFFFFFFF in (size, offset):
        locator = at - _ZIP64_LOCATOR.size
        if locator < 0 or raw[locator : locator + 4] != _ZIP64_LOCATOR_SIGNATURE:
            if 0xFFFF in (here, total):
                raise DocumentTooLargeError(
                    "the archive states 65,535 or more members without a zip64 record "
                    f"(limit {limits.MAX_MEMBERS})")
        else:
            record = locator - _ZIP64_EOCD.size
            if record < 0 or raw[record : record + 4] != _ZIP64_EOCD_SIGNATURE:
                raise CorruptDocumentError("not a whole zip archive: damaged zip64 record")
            fields = _ZIP64_EOCD.unpack_from(raw, record)
            here, total, size, offset = fields[6], fields[7], fields[8], fields[9]
            end = record
    return max(here, total), end - size, size


def _check_member_count(raw: bytes) -> None:
    """`DocumentTooLargeError` for more than `limits.MAX_MEMBERS` entries, before
    `zipfile` builds an object per entry: the count the end record states, then the
    entries themselves (zipfile reads the directory by its size, not that count)."""
    declared, start, size = _directory_bounds(raw)
    if declared > limits.MAX_MEMBERS:
        raise DocumentTooLargeError(
            f"the archive states {declared} members (limit {limits.MAX_MEMBERS})")
    if start < 0 or size < 0:
        return  # damaged: zipfile says so
    position, end, count = start, min(len(raw), start + size), 0
    while position + _CENTRAL.size <= end:
        fields = _CENTRAL.unpack_from(raw, position)
        if fields[0] != _CENTRAL_SIGNATURE:
            return  # damaged, or data before the archive: zipfile decides
        count += 1
        if count > limits.MAX_MEMBERS:
            raise DocumentTooLargeError(
                f"more than {limits.MAX_MEMBERS} archive members (limit "
                f"{limits.MAX_MEMBERS})")
        position += _CENTRAL.size + fields[10] + fields[11] + fields[12]


def _local_extra_length(raw: bytes, info: zipfile.ZipInfo) -> int:
    """The extra-field length in `info`'s local header (0 if the header is not whole:
    `_inflate` refuses it)."""
    header = raw[info.header_offset : info.header_offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size:
        return 0
    return int(_LOCAL_HEADER.unpack(header)[10])


def _check_directory(infos: list[zipfile.ZipInfo], raw: bytes) -> None:
    if len(infos) > limits.MAX_MEMBERS:
        raise DocumentTooLargeError(
            f"{len(infos)} archive members (limit {limits.MAX_MEMBERS})")
    seen: set[str] = set()
    total = 0
    for info in infos:
        _check_name(info.filename)
        if info.filename in seen:
            raise CorruptDocumentError(f"duplicate member {info.filename!r}")
        seen.add(info.filename)
        if info.flag_bits & 0x1:
            raise UnsupportedDocumentError(f"member {info.filename!r} is zip-encrypted")
        if info.compress_type not in {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}:
            raise UnsupportedDocumentError(
                f"member {info.filename!r} uses compression method {info.compress_type}, "
                "not stored or deflate (OCF allows only these)")
        if info.file_size > limits.MAX_MEMBER_BYTES:
            raise DocumentTooLargeError(
                f"member {info.filename!r} inflates to {info.file_size} bytes "
                f"(limit {limits.MAX_MEMBER_BYTES})")
        if (info.file_size > limits.RATIO_MIN_BYTES
                and info.file_size > limits.MAX_RATIO * max(info.compress_size, 1)):
            raise DocumentTooLargeError(
                f"member {info.filename!r} inflates {info.file_size} bytes from "
                f"{info.compress_size} (ratio limit {limits.MAX_RATIO})")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CorruptDocumentError(f"stored member {info.filename!r} changes size")
        total += info.file_size
        if total > limits.MAX_TOTAL_BYTES:
            raise DocumentTooLargeError(
                f"the archive inflates to more than {limits.MAX_TOTAL_BYTES} bytes")
    # Entries must not share compressed data (overlapping entries are the kernel of a
    # non-recursive zip bomb, and no zip writer makes them).
    ordered = sorted(infos, key=lambda info: info.header_offset)

    def end_of(info: zipfile.ZipInfo) -> int:
        return (info.header_offset + _LOCAL_HEADER.size + len(_raw_name(info))
                + _local_extra_length(raw, info) + info.compress_size)

    for here, after in itertools.pairwise(ordered):
        if end_of(here) > after.header_offset:
            raise DocumentTooLargeError(
                f"archive members {here.filename!r} and {after.filename!r} overlap")
    if ordered and end_of(ordered[-1]) > len(raw):
        raise CorruptDocumentError("the archive is truncated")


def _inflate(raw: bytes, info: zipfile.ZipInfo) -> bytes:
    offset = info.header_offset
    header = raw[offset : offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size:
        raise CorruptDocumentError(f"member {info.filename!r} is truncated")
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_SIGNATURE:
        raise CorruptDocumentError(f"member {info.filename!r} has no local header")
    name_length, extra_length = fields[9], fields[10]
    start = offset + _LOCAL_HEADER.size
    local_name = raw[start : start + name_length]
    if local_name != _raw_name(info):
        raise CorruptDocumentError(f"member {info.filename!r}: local and central names differ")
    start += name_length + extra_length
    compressed = raw[start : start + info.compress_size]
    if len(compressed) != info.compress_size:
        raise CorruptDocumentError(f"member {info.filename!r} is truncated")
    if info.compress_type == zipfile.ZIP_STORED:
        data = compressed
    else:
        inflater = zlib.decompressobj(-15)
        try:
            # at most one byte past the declared size: a member that lies is caught here
            data = inflater.decompress(compressed, info.file_size + 1)
        except zlib.error as error:
            raise CorruptDocumentError(f"member {info.filename!r} is damaged: {error}") from error
        if len(data) > info.file_size or (inflater.unconsumed_tail and not inflater.eof):
            raise DocumentTooLargeError(
                f"member {info.filename!r} inflates past its declared {info.file_size} bytes")
        if not inflater.eof:
            raise CorruptDocumentError(f"member {info.filename!r} is truncated or damaged")
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise CorruptDocumentError(f"member {info.filename!r} fails its size or CRC check")
    return data


def read_archive(data: bytes) -> list[Member]:
    """Every member of the zip `data`, inflated within the limits, in archive order."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise CorruptDocumentError("no EPUB data")
    raw = bytes(data)
    if len(raw) > limits.MAX_ARCHIVE_BYTES:
        raise DocumentTooLargeError(
            f"the archive is {len(raw)} bytes (limit {limits.MAX_ARCHIVE_BYTES})")
    _check_member_count(raw)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            struct.error, UnicodeDecodeError) as error:
        raise CorruptDocumentError(f"not a whole zip archive: {error}") from error
    _check_directory(infos, raw)
    members = []
    for info in infos:
        members.append(Member(
            name=info.filename,
            data=b"" if info.is_dir() else _inflate(raw, info),
            date_time=info.date_time,
            compress_type=info.compress_type,
            external_attr=info.external_attr,
            create_system=info.create_system,
        ))
    return members


def write_archive(members: list[Member]) -> bytes:
    """The members zipped again: ``mimetype`` first and stored, then the rest in order,
    each stored or deflated as in the master, with the master's timestamps (before 1980,
    which zip cannot hold, as 1980-01-01)."""
    ordered = ([m for m in members if m.name == MIMETYPE]
               + [m for m in members if m.name != MIMETYPE])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member in ordered:
            date_time = member.date_time if member.date_time[0] >= 1980 else _EPOCH
            info = zipfile.ZipInfo(member.name, date_time=date_time)
            info.create_system = member.create_system
            info.external_attr = member.external_attr
            stored = (member.name == MIMETYPE or member.is_dir
                      or member.compress_type == zipfile.ZIP_STORED)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, member.data)
    return out.getvalue()
