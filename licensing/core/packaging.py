"""Packaging a master into encrypted pieces, and getting it back.

``package_work`` streams a master (a path or a binary stream) piece by piece:
it hashes the master, seals each piece with a fresh random content key, hashes
each ciphertext piece and writes the ciphertext to one file, never holding more
than one piece in memory. It returns the content key (for the caller to wrap
under its key-encryption key) and the unsigned ``Manifest``.

The ciphertext file puts piece ``i`` at ``manifest.piece_offset(i)``, so a
serving peer reads it with ``read_piece`` (one seek) and a web seed serves it
with one HTTP Range request. Buyers check each piece with
``manifest.verify_piece`` and decrypt it with ``open_piece`` or, for the whole
work, ``decrypt_work``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .encoding import check_identifier
from .errors import BadPieceError, MalformedError, PackagingError
from .manifest import MAX_PIECES, Manifest, verify_piece
from .pieces import (
    CONTENT_KEY_BYTES,
    DEFAULT_PIECE_SIZE,
    TAG_BYTES,
    PieceCipher,
    check_piece_size,
    piece_count_for,
)

#: where randomness comes from; tests inject a deterministic one
RandomSource = Callable[[int], bytes]


#: fills a buffer from the master; returns how many bytes it wrote (0 at the end)
_Fill = Callable[[memoryview], int]


@dataclass(frozen=True)
class PackagedWork:
    """What packaging returns: the manifest to sign, the key to wrap, the master's hash."""

    manifest: Manifest
    content_key: bytes = field(repr=False)
    master_sha256: bytes
    ciphertext_path: Path

    @property
    def master_sha256_hex(self) -> str:
        return self.master_sha256.hex()


def package_work(
    source: str | os.PathLike[str] | BinaryIO,
    destination: str | os.PathLike[str],
    *,
    work_id: str,
    piece_size: int = DEFAULT_PIECE_SIZE,
    size: int | None = None,
    random: RandomSource = os.urandom,
) -> PackagedWork:
    """Encrypt a master into the ciphertext file ``destination``; stream, one piece at a time.

    ``source`` is a path or a binary stream; for a stream, ``size`` is its length
    (the count and size are bound into every piece, so they are needed up front).
    The file appears at ``destination`` only once it is complete.
    """
    check_identifier(work_id, what="work id")
    check_piece_size(piece_size)
    content_key = random(CONTENT_KEY_BYTES)
    if not isinstance(content_key, bytes) or len(content_key) != CONTENT_KEY_BYTES:
        raise PackagingError("the random source must return the requested bytes")
    target = Path(destination)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb", buffering=0) as raw:
                master_size = os.fstat(raw.fileno()).st_size

                def fill_from_file(view: memoryview) -> int:
                    return raw.readinto(view) or 0

                return _package(
                    fill_from_file,
                    size=master_size,
                    target=target,
                    work_id=work_id,
                    piece_size=piece_size,
                    content_key=content_key,
                )
        except OSError as error:
            raise PackagingError(f"cannot read the master: {error}") from error
    if size is None:
        raise PackagingError("give the size of a master read from a stream")
    stream = source

    def fill_from_stream(view: memoryview) -> int:
        chunk = stream.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    return _package(
        fill_from_stream,
        size=size,
        target=target,
        work_id=work_id,
        piece_size=piece_size,
        content_key=content_key,
    )


def _read_exactly(fill: _Fill, view: memoryview) -> None:
    filled = 0
    while filled < len(view):
        got = fill(view[filled:])
        if not got:
            raise PackagingError("the master ended early (did it change while packaging?)")
        filled += got


def _package(
    fill: _Fill,
    *,
    size: int,
    target: Path,
    work_id: str,
    piece_size: int,
    content_key: bytes,
) -> PackagedWork:
    if type(size) is not int or size <= 0:
        raise PackagingError("a master has at least one byte")
    count = piece_count_for(size, piece_size)
    if count > MAX_PIECES:
        raise PackagingError(f"more than {MAX_PIECES} pieces; use a larger piece size")
    cipher = PieceCipher(content_key, work_id=work_id, master_size=size, piece_size=piece_size)
    # Two plaintext buffers: while the cipher seals one piece on this thread, a second
    # thread hashes the master from the other (hashlib releases the GIL), so the extra
    # SHA-256 pass over the master costs no wall time where a second core exists.
    plains = [memoryview(bytearray(piece_size)) for _ in range(2)]
    sealed = memoryview(bytearray(piece_size + TAG_BYTES))
    master_hash = hashlib.sha256()
    piece_hashes: list[bytes] = []
    hashing: list[Future[None] | None] = [None, None]
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".packaging-")
    except OSError as error:
        raise PackagingError(f"cannot write next to {target}: {error}") from error
    try:
        with open(descriptor, "wb", buffering=0) as out, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="master-hash") as hasher:
            for index in range(count):
                slot = index % 2
                previous = hashing[slot]
                if previous is not None:
                    previous.result()  # the buffer is free again
                length = min(piece_size, size - index * piece_size)
                piece, sealed_piece = plains[slot][:length], sealed[: length + TAG_BYTES]
                _read_exactly(fill, piece)
                # One worker thread: updates run in submission order, as the hash needs.
                hashing[slot] = hasher.submit(master_hash.update, piece)
                cipher.seal_into(index, piece, sealed_piece)
                piece_hashes.append(hashlib.sha256(sealed_piece).digest())
                written = 0
                while written < len(sealed_piece):
                    written += out.write(sealed_piece[written:]) or 0
            for pending in hashing:
                if pending is not None:
                    pending.result()
            if fill(memoryview(bytearray(1))):
                raise PackagingError("the master is longer than its size")
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise PackagingError(f"cannot write the ciphertext: {error}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    manifest = Manifest(
        work_id=work_id, master_size=size, piece_size=piece_size, piece_hashes=tuple(piece_hashes)
    )
    return PackagedWork(
        manifest=manifest,
        content_key=content_key,
        master_sha256=master_hash.digest(),
        ciphertext_path=target,
    )


def cipher_for(content_key: bytes, manifest: Manifest) -> PieceCipher:
    """The piece cipher of a work, to open many pieces with one key schedule."""
    return PieceCipher(
        content_key,
        work_id=manifest.work_id,
        master_size=manifest.master_size,
        piece_size=manifest.piece_size,
    )


def open_piece(
    content_key: bytes, manifest: Manifest, index: int, data: bytes | memoryview
) -> bytes:
    """Check a ciphertext piece against the manifest, then decrypt it."""
    verify_piece(manifest, index, data)
    return cipher_for(content_key, manifest).open(index, data)


def read_piece(
    ciphertext: str | os.PathLike[str] | BinaryIO, manifest: Manifest, index: int
) -> bytes:
    """Read piece ``index`` from a ciphertext file (what a serving peer sends)."""
    offset, length = manifest.piece_offset(index), manifest.piece_length(index)
    if isinstance(ciphertext, (str, os.PathLike)):
        try:
            with open(ciphertext, "rb") as stream:
                stream.seek(offset)
                data = stream.read(length)
        except OSError as error:
            raise BadPieceError(f"cannot read piece {index}: {error}") from error
    else:
        ciphertext.seek(offset)
        data = ciphertext.read(length)
    if len(data) != length:
        raise BadPieceError(f"piece {index} is truncated on disk")
    return data


def decrypt_work(
    content_key: bytes,
    manifest: Manifest,
    ciphertext: str | os.PathLike[str] | BinaryIO,
    destination: BinaryIO,
) -> bytes:
    """Verify and decrypt every piece into ``destination``; return the SHA-256 written.

    Streams one piece at a time. Raises ``BadPieceError`` or
    ``DecryptionFailedError`` at the first bad piece, having written only the
    pieces before it.
    """
    if isinstance(ciphertext, (str, os.PathLike)):
        try:
            stream = open(ciphertext, "rb")  # noqa: SIM115 - closed just below
        except OSError as error:
            raise BadPieceError(f"cannot read the ciphertext: {error}") from error
        with stream:
            return decrypt_work(content_key, manifest, stream, destination)
    if not isinstance(content_key, bytes) or len(content_key) != CONTENT_KEY_BYTES:
        raise MalformedError("a content key is 32 bytes")
    cipher = cipher_for(content_key, manifest)
    digest = hashlib.sha256()
    for index in range(manifest.piece_count):
        data = read_piece(ciphertext, manifest, index)
        verify_piece(manifest, index, data)
        plaintext = cipher.open(index, data)
        digest.update(plaintext)
        destination.write(plaintext)
    return digest.digest()
