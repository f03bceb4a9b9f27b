"""Delivering a downloaded work: decrypt, mark, write atomically, and sign the receipt.

``deliver`` opens every piece with the licence's content key (AES-256-GCM
authenticates each one, so a piece damaged on disk since it was verified is refused),
applies the marking rule (``watermark.rule``: the licence's payload embedded when the
work is an image, a recording (WAV, FLAC, Ogg Vorbis, MP3), a video (MP4, WebM) or a
document (PDF, EPUB) the library marks, written in the work's own format, else the plain
master and why), and writes the
copy through a temporary file in the destination's folder (fsync, rename): never a
partial or corrupt file under the final name. It
returns the copy's SHA-256, whether it was marked and, if not, why, in the closed
vocabulary the receipt carries (``UnmarkedReason``).

A work that is not marked is written while it downloads (``StreamedCopy``): each piece
is decrypted right after it is verified and stored, in the downloader's worker
threads, into the temporary file, and hashed in order as the written prefix grows;
what is left for the end is the pieces the download did not bring (held before this
run), the rest of the hash, the fsync and the rename. The work is never read back and
decrypted a second time.

A sealed licence (``licence.seal``; docs/SEALED.md) takes another path: the decrypted
pieces are the work's sealed container, not the master, and the licence's personal
table (fetched encrypted from the platform, checked against the licence's hash and
opened with the table key the licence wraps) decrypts it straight into the marked copy
(``watermark.sealed.unseal``). There is no unmarked way out: if the table does not open
or does not fit, nothing is written. The container is held in memory only, as the
marked path holds the plaintext, never in a file.

Marking must be deterministic for a given (master, key, payload, library version):
the platform's audit recomputes a sample of copies with the same rule and compares
their hashes with the receipts (docs/THREAT_MODEL.md). Nothing here adds randomness.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.files import atomic_file, fsync_folder
from licensing.core import (
    DeviceKeys,
    Licence,
    LicenceKeys,
    LicensingError,
    Manifest,
    UnmarkedReason,
    sign_receipt,
)
from licensing.core.bitfield import bitfield_has, bitfield_length, bitfield_missing, bitfield_set
from licensing.core.packaging import cipher_for
from licensing.core.sealed_tables import open_table
from watermark import InvalidKeyError, InvalidPayloadError, WatermarkError
from watermark import rule as marking_rule

from .store import StoreError, WorkStore


class DeliveryError(Exception):
    """The copy could not be written; nothing was left under the final name."""


@dataclass(frozen=True)
class Delivery:
    """What was written: where, its SHA-256 and size, and whether it carries the mark."""

    path: Path
    sha256: bytes
    size: int
    marked: bool
    unmarked_reason: UnmarkedReason | None
    #: a sentence for people (logs, the CLI): why the copy is not marked
    detail: str = ""

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


def deliver(
    *,
    store: WorkStore,
    manifest: Manifest,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    content_type: str,
    progress: marking_rule.Progress | None = None,
    table: bytes | None = None,
) -> Delivery:
    """Decrypt the held work, mark it if the library marks its medium, write it
    atomically. ``progress`` hears how a long marking (a video's frames) comes along.
    For a sealed licence, ``table`` is its encrypted personal table, as the platform
    served it (see the module's docstring).

    Raises ``DeliveryError`` if the work is incomplete, does not belong to the licence,
    a piece does not authenticate, a sealed licence's table is missing or wrong, or the
    copy cannot be written.
    """
    destination = Path(destination)
    _check_delivery(store, manifest, licence)
    if not store.complete:
        missing = manifest.piece_count - store.held_count
        raise DeliveryError(f"the work is incomplete: {missing} piece(s) missing")
    try:
        if licence.seal is not None:
            return _deliver_sealed(store, manifest, licence=licence, keys=keys,
                                   destination=destination, table=table)
        if marking_rule.marks(content_type, manifest.master_size):
            return _deliver_marked(
                store, manifest, licence, keys, destination, content_type=content_type,
                progress=progress,
            )
    except LicensingError as error:
        raise DeliveryError(f"a piece does not decrypt: {error}") from error
    except StoreError as error:
        raise DeliveryError(f"cannot read the held work: {error}") from error
    except OSError as error:
        raise DeliveryError(f"cannot write {destination}: {error}") from error
    try:
        copy = StreamedCopy(manifest=manifest, keys=keys, destination=destination,
                            content_type=content_type)
    except OSError as error:
        raise DeliveryError(f"cannot write {destination}: {error}") from error
    return copy.finish(store)


def _check_delivery(store: WorkStore, manifest: Manifest, licence: Licence) -> None:
    if store.manifest.root != manifest.root or store.work_id != manifest.work_id:
        raise DeliveryError("the store holds another packaging of this work")
    try:
        licence.check_manifest(manifest)
    except LicensingError as error:
        raise DeliveryError(f"the licence is for another work: {error}") from error


def streamed_copy(
    *,
    store: WorkStore,
    manifest: Manifest,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    content_type: str,
) -> StreamedCopy | None:
    """A copy to write while the work downloads, or None if it will be marked.

    A marked copy is made from the whole plaintext at once (``deliver``, after the
    download); the marking rule caps those works' size, so nothing is lost there. A
    sealed licence's plaintext is its sealed container, never a copy to write: None.
    """
    _check_delivery(store, manifest, licence)
    if licence.seal is not None or marking_rule.marks(content_type, manifest.master_size):
        return None
    return StreamedCopy(manifest=manifest, keys=keys, destination=Path(destination),
                        content_type=content_type)


def _plaintext_pieces(store: WorkStore, manifest: Manifest, keys: LicenceKeys) -> Iterator[bytes]:
    cipher = cipher_for(keys.content_key, manifest)
    for index in range(manifest.piece_count):
        yield cipher.open(index, store.read_piece(index))


def _deliver_marked(
    store: WorkStore,
    manifest: Manifest,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    *,
    content_type: str,
    progress: marking_rule.Progress | None = None,
) -> Delivery:
    """A work the rule tries to mark: the whole plaintext at once, through
    ``licensed_copy``, which may still give the master back with a reason."""
    plaintext = b"".join(_plaintext_pieces(store, manifest, keys))
    try:
        copy = marking_rule.licensed_copy(
            plaintext, content_type, keys.watermark_key, licence.watermark_payload,
            progress=progress,
        )
    except (InvalidKeyError, InvalidPayloadError) as error:
        raise DeliveryError(f"the licence's watermark key or payload is unusable: {error}"
                            ) from error
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(destination, suffix=".partial") as out:
        out.write(copy.data)
    return Delivery(
        path=destination,
        sha256=hashlib.sha256(copy.data).digest(),
        size=len(copy.data),
        marked=copy.marked,
        unmarked_reason=None if copy.reason is None else UnmarkedReason(copy.reason),
        detail=copy.detail,
    )


def unseal_function() -> Callable[[bytes, bytes], bytes]:
    """``watermark.sealed.unseal``, imported when first needed (it brings numpy), and
    looked up at each delivery (the modified-agent test replaces it)."""
    from watermark import sealed

    return sealed.unseal


def _deliver_sealed(
    store: WorkStore,
    manifest: Manifest,
    *,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    table: bytes | None,
) -> Delivery:
    """Open the licence's table, decrypt the sealed container with it, write the result.

    The table is checked against the licence's claim before anything is decrypted, and
    the container stays in memory: only the unsealed (marked) copy reaches the disk.
    """
    unseal = unseal_function()
    seal = licence.seal
    assert seal is not None
    if table is None:
        raise DeliveryError("this work is sealed: its personal table is needed to open it")
    if len(table) != seal.size:
        raise DeliveryError(f"the personal table is {len(table)} bytes, not the "
                            f"{seal.size} the licence names")
    try:
        plain_table = open_table(keys.watermark_key, licence.licence_id, table,
                                 seal.table_sha256)
    except LicensingError as error:
        raise DeliveryError(f"the personal table is refused: {error}; no copy was written"
                            ) from error
    container = b"".join(_plaintext_pieces(store, manifest, keys))
    try:
        copy = unseal(container, plain_table)
    except (ValueError, WatermarkError) as error:  # SealedFormatError, or Pillow's refusal
        raise DeliveryError(f"the sealed work does not open with this licence's table "
                            f"({error}); no copy was written") from error
    finally:
        del container
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(destination, suffix=".partial") as out:
        out.write(copy)
    return Delivery(path=destination, sha256=hashlib.sha256(copy).digest(), size=len(copy),
                    marked=True, unmarked_reason=None)


class StreamedCopy:
    """The copy of an unmarked work, written piece by piece as the download verifies them.

    ``on_piece`` is the downloader's hook (worker threads, any order); it never raises:
    a piece it cannot decrypt or write is left for ``finish``, which decrypts from the
    store whatever is not yet in the copy and raises ``DeliveryError`` if that fails
    too. Until ``finish`` returns, the copy exists only as a temporary file beside the
    destination; ``discard`` removes it (a failed or interrupted download).
    """

    def __init__(
        self, *, manifest: Manifest, keys: LicenceKeys, destination: Path, content_type: str
    ) -> None:
        reason, detail = marking_rule.skipped_reason(content_type)
        self._reason = UnmarkedReason(reason)
        self._detail = detail
        self._manifest = manifest
        self._cipher = cipher_for(keys.content_key, manifest)
        self.destination = destination
        destination.parent.mkdir(parents=True, exist_ok=True)
        self._fd, self._temporary = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".partial"
        )
        try:  # the copy's blocks up front: fewer, larger extents, and no ENOSPC halfway
            os.posix_fallocate(self._fd, 0, manifest.master_size)
        except OSError as error:
            os.close(self._fd)
            os.unlink(self._temporary)
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            self._fd = os.open(self._temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._lock = threading.Lock()
        self._hashing = threading.Lock()
        self._written = bytearray(bitfield_length(manifest.piece_count))
        self._hashed = 0  # pieces hashed so far, all in order
        self._digest = hashlib.sha256()
        self._buffers = threading.local()

    # -- while downloading (worker threads) ----------------------------------------------

    def on_piece(self, index: int, ciphertext: memoryview) -> None:
        try:
            plaintext = self._buffer("plain")[: self._manifest.plaintext_length(index)]
            self._cipher.open_into(index, ciphertext, plaintext)
            self._pwrite(index, plaintext)
        except (LicensingError, OSError):
            return  # ``finish`` tries this piece again from the store, and reports it
        with self._lock:
            bitfield_set(self._written, index)
        with contextlib.suppress(OSError):  # ``finish`` hashes again, and reports it
            self._advance_hash(index, plaintext, wait=False)

    # -- after the download --------------------------------------------------------------

    def finish(self, store: WorkStore) -> Delivery:
        """Complete the copy from the store, sync it, and rename it onto the destination."""
        manifest = self._manifest
        try:
            if not store.complete:
                missing = manifest.piece_count - store.held_count
                raise DeliveryError(f"the work is incomplete: {missing} piece(s) missing")
            for index in bitfield_missing(self._written, manifest.piece_count):
                plaintext = self._buffer("plain")[: manifest.plaintext_length(index)]
                self._cipher.open_into(index, store.read_piece(index), plaintext)
                self._pwrite(index, plaintext)
                with self._lock:
                    bitfield_set(self._written, index)
                self._advance_hash(index, plaintext, wait=True)
            # The disk writes the copy while this thread hashes what is left of it (from
            # the page cache): the two waits overlap instead of adding up.
            with ThreadPoolExecutor(1, thread_name_prefix="peermark-copy-sync") as pool:
                synced = pool.submit(os.fdatasync, self._fd)
                self._advance_hash(-1, None, wait=True)
                synced.result()
            os.fsync(self._fd)  # what is left: the inode, cheap now
            os.close(self._fd)
            self._fd = -1
            os.replace(self._temporary, self.destination)
        except LicensingError as error:
            self.discard()
            raise DeliveryError(f"a piece does not decrypt: {error}") from error
        except StoreError as error:
            self.discard()
            raise DeliveryError(f"cannot read the held work: {error}") from error
        except OSError as error:
            self.discard()
            raise DeliveryError(f"cannot write {self.destination}: {error}") from error
        except BaseException:
            self.discard()
            raise
        with contextlib.suppress(OSError):  # the rename is done; a folder sync is best effort
            fsync_folder(self.destination.parent)
        return Delivery(
            path=self.destination,
            sha256=self._digest.digest(),
            size=manifest.master_size,
            marked=False,
            unmarked_reason=self._reason,
            detail=self._detail,
        )

    def discard(self) -> None:
        """Remove the unfinished copy (nothing is left under the destination's name)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)

    # -- inside ---------------------------------------------------------------------------

    def _buffer(self, name: str) -> memoryview:
        """A piece-sized buffer of this thread's own, reused from piece to piece."""
        buffer: memoryview | None = getattr(self._buffers, name, None)
        if buffer is None:
            buffer = memoryview(bytearray(self._manifest.piece_size))
            setattr(self._buffers, name, buffer)
        return buffer

    def _pwrite(self, index: int, data: memoryview) -> None:
        offset = index * self._manifest.piece_size
        while data:
            written = os.pwrite(self._fd, data, offset)
            if written <= 0:
                raise OSError(errno.EIO, "short write")
            data, offset = data[written:], offset + written

    def _advance_hash(self, index: int, plaintext: memoryview | None, *, wait: bool) -> None:
        """Hash the written prefix as far as it goes, in piece order.

        One thread hashes at a time; another that finds it busy leaves its piece to it
        (or, if it raced past, to ``finish``). Pieces other than the caller's are read
        back from the copy, still in the page cache.
        """
        if not self._hashing.acquire(blocking=wait):
            return
        try:
            count = self._manifest.piece_count
            while True:
                with self._lock:
                    following = self._hashed
                    if following >= count or not bitfield_has(self._written, following):
                        return
                if following == index and plaintext is not None:
                    self._digest.update(plaintext)
                else:
                    length = self._manifest.plaintext_length(following)
                    back = self._buffer("hash")[:length]
                    if os.preadv(self._fd, [back], following * self._manifest.piece_size
                                 ) != length:
                        raise OSError(errno.EIO, f"piece {following} of the copy is short")
                    self._digest.update(back)
                with self._lock:
                    self._hashed = following + 1
        finally:
            self._hashing.release()


def receipt_for(
    delivery: Delivery,
    *,
    device: DeviceKeys,
    licence: Licence,
    served_bytes: Mapping[str, int],
    now: int,
) -> str:
    """The signed receipt for a delivered copy (output hash, mark, bytes per serving peer).

    ``served_bytes`` is the ciphertext each serving peer delivered under this licence,
    over every run of the download (``DownloadResult.bytes_by_peer`` summed across a
    resume); web seeds are not in it.
    """
    return sign_receipt(
        device,
        licence_id=licence.licence_id,
        output_sha256=delivery.sha256,
        served=dict(served_bytes),
        marked=delivery.marked,
        unmarked_reason=delivery.unmarked_reason,
        issued_at=now,
    )
