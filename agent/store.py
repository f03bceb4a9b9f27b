"""Where an agent keeps the ciphertext it holds, and which pieces of it are verified.

One folder per work under the store's root::

    <root>/<work folder>/manifest.jwt   the signed manifest token (verified when added)
    <root>/<work folder>/ciphertext     piece i at manifest.piece_offset(i): the same
                                        layout as the platform's ciphertext file
    <root>/<work folder>/bitfield       the VERIFIED pieces (BitTorrent bit order)
    <root>/<work folder>/dirty          present while pieces written since the last
                                        ``flush`` may not be on disk yet
    <root>/<work folder>/writer.lock    flock()ed by the one process writing the work

Rules that keep a crash from ever marking an unverified piece:

* ``write_piece`` checks the piece's length and SHA-256 against the signed manifest
  before a byte is written, writes it at its offset, and only then marks it.
* The bitfield file is replaced atomically (temporary file, rename) after every piece,
  so it is never torn; concurrent writers share one rewrite (group commit).
* Neither the ciphertext nor the bitfield is fsynced per piece: under a download's
  write load one fsync can cost more than the piece's own transfer.
  Instead the ``dirty`` marker is made durable before the first piece of a session is
  marked, and removed by ``flush`` once the ciphertext and then the bitfield are
  synced (temporary file, fsync, rename). The marker holds the kernel's boot id. A
  killed process loses nothing it wrote (the page cache survives it), so a store
  reopened with the marker of the same boot only flushes; one reopened after a
  restart (the machine died: its page cache is gone) re-hashes every marked piece and
  unmarks the ones that no longer verify.
* ``close(flush=False)`` (the end of `get`) leaves the flush to the next opener (the
  daemon, or the next command): by the rule above that costs a flush on the same
  boot, and a re-check after a power cut, never a wrong mark. The buyer's copy is
  what `get` makes durable before it returns.
* One process writes a work at a time (an advisory ``flock`` the OS releases when the
  process dies, which is also how a reopening process tells "its writer crashed"
  from "its writer is still downloading"). Others read it, and ``reload`` the
  bitfield to serve what the writer has added.

Disk full and other I/O failures raise ``StoreError`` and mark nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from licensing.core import KeyRing, LicensingError, Manifest, read_manifest, verify_piece
from licensing.core.bitfield import (
    BitfieldError,
    bitfield_clear,
    bitfield_count,
    bitfield_has,
    bitfield_indices,
    bitfield_length,
    bitfield_missing,
    bitfield_set,
    check_bitfield,
)
from licensing.core.jws import parse_document
from licensing.core.kinds import DocumentKind

from .files import fsync_folder, write_atomically

MANIFEST_FILE = "manifest.jwt"
CIPHERTEXT_FILE = "ciphertext"
BITFIELD_FILE = "bitfield"
DIRTY_FILE = "dirty"
LOCK_FILE = "writer.lock"
_SAFE_FOLDER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class StoreError(Exception):
    """The store cannot do what was asked: disk full, I/O error, unknown work, conflict."""


class UnknownWorkError(StoreError):
    """This store holds nothing of that work."""


@dataclass(frozen=True)
class ImportResult:
    """What ``import_ciphertext`` kept: pieces now held, already held, and refused."""

    imported: int
    already_held: int
    bad: tuple[int, ...]


def folder_name(work_id: str) -> str:
    """The folder of a work: its id when that is a safe file name, else a hash of it."""
    if _SAFE_FOLDER.match(work_id):
        return work_id
    return "w-" + hashlib.sha256(work_id.encode()).hexdigest()[:40]


def _io_error(action: str, error: OSError) -> StoreError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"disk full: cannot {action} ({error.strerror})")
    return StoreError(f"cannot {action}: {error}")


BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot of the machine ("" where the kernel does not say: always re-check)."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def _manifest_from_disk(token: str) -> Manifest:
    """The manifest of a stored token: its signature was verified when it was added."""
    document = parse_document(token, DocumentKind.MANIFEST)
    return Manifest.from_claims(document.claims)


class WorkStore:
    """The ciphertext of one work and its verified-piece bitfield. Thread-safe."""

    def __init__(self, folder: Path, manifest: Manifest, manifest_token: str) -> None:
        self.folder = folder
        self.manifest = manifest
        self.manifest_token = manifest_token
        self._lock = threading.Lock()
        self._persist_lock = threading.Lock()
        self._bits = bytearray(bitfield_length(manifest.piece_count))
        self._held = 0
        self._version = 0
        self._persisted_version = 0
        self._writing: set[int] = set()
        self._dirty = False
        self._writer_fd = -1
        try:
            self._fd = os.open(folder / CIPHERTEXT_FILE, os.O_RDWR)
        except OSError as error:
            raise _io_error(f"open the ciphertext of {manifest.work_id}", error) from error
        try:
            self._load_bitfield()
        except BaseException:
            os.close(self._fd)
            self._drop_writer_lock()
            raise

    # -- opening -------------------------------------------------------------------

    def _load_bitfield(self) -> None:
        count = self.manifest.piece_count
        try:
            bits: bytes | None = check_bitfield((self.folder / BITFIELD_FILE).read_bytes(), count)
        except FileNotFoundError:
            bits = bytes(bitfield_length(count))
        except (OSError, BitfieldError):
            bits = None  # unreadable: rebuilt from what verifies on disk
        try:
            marker: str | None = (self.folder / DIRTY_FILE).read_text(errors="replace").strip()
        except FileNotFoundError:
            marker = None
        except OSError:
            marker = ""  # unreadable: treat as another boot's
        dirty = marker is not None
        if bits is not None:
            self._bits = bytearray(bits)
            self._held = bitfield_count(bits)
        if (bits is None or dirty) and self._take_writer_lock():
            # Nobody is writing this work, yet its last writer did not flush: it exited
            # or was killed (its writes are in the page cache), or the machine died.
            self._dirty = dirty
            this_boot = boot_id()
            if bits is not None and marker and this_boot and marker == this_boot:
                try:
                    self.flush()
                    return
                except StoreError:
                    pass  # a failed sync: what is on disk is unknown, check it
            targets = range(count) if bits is None else bitfield_indices(bits, count)
            self.recheck(indices=targets)
            self.flush()
        # Otherwise another live process is writing this work: take its bitfield as it
        # stands; ``reload`` picks up what it adds.

    def _take_writer_lock(self) -> bool:
        """Become this work's only writer (an advisory lock the OS drops if we die)."""
        if self._writer_fd >= 0:
            return True
        try:
            descriptor = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise _io_error(f"lock {self.work_id}", error) from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._writer_fd = descriptor
        return True

    def _drop_writer_lock(self) -> None:
        if self._writer_fd >= 0:
            os.close(self._writer_fd)  # closing releases the lock
            self._writer_fd = -1

    def reload(self) -> None:
        """Re-read the bitfield another process (a download) is writing."""
        if self._writer_fd >= 0:
            return  # this object is the writer: its bitfield is the newest
        try:
            bits = check_bitfield(
                (self.folder / BITFIELD_FILE).read_bytes(), self.manifest.piece_count
            )
        except (OSError, BitfieldError):
            return
        with self._lock:
            self._bits = bytearray(bits)
            self._held = bitfield_count(bits)
            self._persisted_version = self._version

    # -- queries ------------------------------------------------------------------

    @property
    def work_id(self) -> str:
        return self.manifest.work_id

    @property
    def ciphertext_path(self) -> Path:
        return self.folder / CIPHERTEXT_FILE

    @property
    def piece_count(self) -> int:
        return self.manifest.piece_count

    def have(self, index: int) -> bool:
        if not 0 <= index < self.manifest.piece_count:
            return False
        return bitfield_has(self._bits, index)

    def held(self) -> list[int]:
        with self._lock:
            return bitfield_indices(self._bits, self.manifest.piece_count)

    def missing(self) -> list[int]:
        with self._lock:
            return bitfield_missing(self._bits, self.manifest.piece_count)

    @property
    def held_count(self) -> int:
        return self._held

    @property
    def complete(self) -> bool:
        return self._held == self.manifest.piece_count

    @property
    def held_bytes(self) -> int:
        """Ciphertext bytes of the verified pieces."""
        with self._lock:
            indices = bitfield_indices(self._bits, self.manifest.piece_count)
        return sum(self.manifest.piece_length(i) for i in indices)

    def bitfield(self) -> bytes:
        with self._lock:
            return bytes(self._bits)

    # -- pieces -------------------------------------------------------------------

    def read_piece(self, index: int) -> bytes:
        """The ciphertext of a verified piece (``StoreError`` if it is not held)."""
        if not self.have(index):
            raise StoreError(f"piece {index} of {self.work_id} is not held")
        length = self.manifest.piece_length(index)
        try:
            data = os.pread(self._fd, length, self.manifest.piece_offset(index))
        except OSError as error:
            raise _io_error(f"read piece {index} of {self.work_id}", error) from error
        if len(data) != length:
            raise StoreError(f"piece {index} of {self.work_id} is truncated on disk")
        return data

    def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Verify a piece against the manifest, write it, mark it. False if already held.

        Raises ``BadPieceError``/``PieceOutOfRangeError`` (licensing) for a piece that
        does not verify, before anything is written, and ``StoreError`` for I/O
        failures, leaving the piece unmarked. Returns once the mark is on disk.
        """
        verify_piece(self.manifest, index, memoryview(data))
        with self._lock:
            if index in self._writing or bitfield_has(self._bits, index):
                return False
            self._writing.add(index)
        try:
            self._ensure_dirty()
            self._pwrite_all(index, data)
            self._mark(index)
            try:
                self._persist()
            except StoreError:
                self._unmark(index)
                raise
        finally:
            with self._lock:
                self._writing.discard(index)
        return True

    def _pwrite_all(self, index: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        offset = self.manifest.piece_offset(index)
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                if written <= 0:
                    raise OSError(errno.EIO, "short write")
                view, offset = view[written:], offset + written
        except OSError as error:
            raise _io_error(f"write piece {index} of {self.work_id}", error) from error

    def _mark(self, index: int) -> None:
        with self._lock:
            if bitfield_set(self._bits, index):
                self._held += 1
                self._version += 1

    def _unmark(self, index: int) -> None:
        with self._lock:
            if bitfield_clear(self._bits, index):
                self._held -= 1
                self._version += 1

    def _ensure_dirty(self) -> None:
        """Make the ``dirty`` marker durable before the first piece of a session is marked."""
        if self._dirty:
            return
        with self._persist_lock:
            if self._dirty:
                return
            if not self._take_writer_lock():
                raise StoreError(
                    f"another agent process is writing work {self.work_id}; try again later"
                )
            try:
                write_atomically(self.folder / DIRTY_FILE, boot_id().encode())
                fsync_folder(self.folder)
            except OSError as error:
                raise _io_error(f"mark {self.work_id} as being written", error) from error
            self._dirty = True

    def _persist(self, *, sync: bool = False) -> None:
        """Write the bitfield if it changed since the last write (one write serves many).

        Replaced atomically (temporary file, rename) after every piece, so a killed
        process never leaves a torn or optimistic bitfield; fsynced only by ``flush``
        (``sync=True``): until then the durable ``dirty`` marker makes a reopening
        process re-check the marks, so a power cut cannot leave a wrong one either.
        """
        with self._persist_lock:
            with self._lock:
                if self._version == self._persisted_version and not sync:
                    return
                version, snapshot = self._version, bytes(self._bits)
            try:
                write_atomically(self.folder / BITFIELD_FILE, snapshot, sync=sync,
                                 single_writer=True)
            except OSError as error:
                raise _io_error(f"save the bitfield of {self.work_id}", error) from error
            self._persisted_version = version

    def recheck(self, *, indices: Iterable[int] | None = None) -> list[int]:
        """Re-hash pieces on disk (all by default); mark those that verify, unmark the rest.

        Returns the indices that were marked but failed. Used after an unclean shutdown.
        """
        count = self.manifest.piece_count
        targets = range(count) if indices is None else list(indices)
        self._ensure_dirty()
        failed: list[int] = []
        for index in targets:
            length = self.manifest.piece_length(index)
            try:
                data = os.pread(self._fd, length, self.manifest.piece_offset(index))
                verify_piece(self.manifest, index, data)
            except (OSError, LicensingError):
                if self.have(index):
                    failed.append(index)
                self._unmark(index)
                continue
            self._mark(index)
        self._persist()
        return failed

    def import_ciphertext(self, path: str | os.PathLike[str]) -> ImportResult:
        """Take every piece of a full ciphertext file that verifies (a seeder's import).

        Pieces that do not verify (or are missing from a short file) are refused and
        stay unmarked; I/O errors on this store raise ``StoreError``.
        """
        source = Path(path)
        same_file = False
        with contextlib.suppress(OSError):
            same_file = source.resolve() == self.ciphertext_path.resolve()
        try:
            descriptor = os.open(source, os.O_RDONLY)
        except OSError as error:
            raise _io_error(f"open {source}", error) from error
        imported = already = 0
        bad: list[int] = []
        try:
            self._ensure_dirty()
            for index in range(self.manifest.piece_count):
                if self.have(index):
                    already += 1
                    continue
                length = self.manifest.piece_length(index)
                try:
                    data = os.pread(descriptor, length, self.manifest.piece_offset(index))
                except OSError as error:
                    raise _io_error(f"read {source}", error) from error
                try:
                    verify_piece(self.manifest, index, data)
                except LicensingError:
                    bad.append(index)
                    continue
                if not same_file:
                    self._pwrite_all(index, data)
                self._mark(index)
                imported += 1
        finally:
            os.close(descriptor)
        self._persist()
        return ImportResult(imported=imported, already_held=already, bad=tuple(bad))

    def flush(self) -> None:
        """Sync the ciphertext and bitfield to disk and clear the ``dirty`` marker."""
        if not self._dirty:
            return
        try:
            os.fdatasync(self._fd)
        except OSError as error:
            raise _io_error(f"sync {self.work_id} to disk", error) from error
        self._persist(sync=True)
        with self._persist_lock:
            if not self._dirty:
                return
            try:
                (self.folder / DIRTY_FILE).unlink(missing_ok=True)
                fsync_folder(self.folder)
            except OSError as error:
                raise _io_error(f"sync {self.work_id} to disk", error) from error
            self._dirty = False
            self._drop_writer_lock()

    def close(self, *, flush: bool = True) -> None:
        """Flush (unless told not to) and release the file; do not use the object after.

        ``flush=False`` leaves the ``dirty`` marker for the next opener, which flushes
        (same boot) or re-checks (after a restart): see the module's rules.
        """
        if self._fd < 0:
            return
        try:
            self._persist()
            if flush:
                self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1
            self._drop_writer_lock()


class PieceStore:
    """All the works an agent holds, one ``WorkStore`` each, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _io_error(f"create {self.root}", error) from error
        self._lock = threading.Lock()
        self._works: dict[str, WorkStore] = {}
        # folder name -> (the manifest file's identity, its work id): the daemon lists
        # the works every few seconds, and each answer to a ping or status request too.
        self._listed: dict[str, tuple[tuple[int, int, int], str]] = {}

    def add_work(self, manifest_token: str, *, keyring: KeyRing, now: int) -> WorkStore:
        """Verify a signed manifest and start holding its work (or return the held one).

        A manifest whose signature fails raises its ``LicensingError``; a manifest for a
        work held under another packaging (another Merkle root) raises ``StoreError``.
        """
        manifest = read_manifest(manifest_token, keyring=keyring, now=now)
        return self.add_verified(manifest, manifest_token)

    def add_verified(self, manifest: Manifest, manifest_token: str) -> WorkStore:
        """Like ``add_work`` for a manifest the caller has just verified from ``manifest_token``."""
        with self._lock:
            existing = self._get_locked(manifest.work_id)
            if existing is not None:
                if existing.manifest.root != manifest.root:
                    raise StoreError(
                        f"work {manifest.work_id} is held under another manifest (root "
                        f"{existing.manifest.root_hex[:16]}...); remove it first"
                    )
                if manifest_token != existing.manifest_token:
                    # A re-signed manifest of the same content (key rotation): keep the newest.
                    try:
                        write_atomically(existing.folder / MANIFEST_FILE, manifest_token.encode())
                    except OSError as error:
                        raise _io_error("update the manifest", error) from error
                    existing.manifest_token = manifest_token
                return existing
            folder = self.root / folder_name(manifest.work_id)
            if not self._create(folder, manifest, manifest_token):
                # Another agent process added it a moment ago: use theirs.
                raced = self._get_locked(manifest.work_id)
                if raced is None or raced.manifest.root != manifest.root:
                    raise StoreError(f"work {manifest.work_id} appeared under another manifest")
                return raced
            work = WorkStore(folder, manifest, manifest_token)
            self._works[manifest.work_id] = work
            return work

    def _create(self, folder: Path, manifest: Manifest, manifest_token: str) -> bool:
        """Lay out a work's folder under a temporary name, then rename it into place.

        False if the folder appeared meanwhile (another process added the work).
        """
        try:
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".adding-"))
        except OSError as error:
            raise _io_error(f"create a folder in {self.root}", error) from error
        try:
            (staging / MANIFEST_FILE).write_bytes(manifest_token.encode())
            descriptor = os.open(staging / CIPHERTEXT_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    # Reserve the space now: a full disk shows up here, not mid-download.
                    os.posix_fallocate(descriptor, 0, manifest.ciphertext_size)
                except OSError as error:
                    if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    os.ftruncate(descriptor, manifest.ciphertext_size)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            write_atomically(staging / BITFIELD_FILE, bytes(bitfield_length(manifest.piece_count)))
            try:
                os.rename(staging, folder)
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                _remove_tree(staging)
                return False
            fsync_folder(self.root)
        except OSError as error:
            _remove_tree(staging)
            raise _io_error(f"make room for work {manifest.work_id}", error) from error
        return True

    def _get_locked(self, work_id: str) -> WorkStore | None:
        work = self._works.get(work_id)
        if work is not None:
            return work
        folder = self.root / folder_name(work_id)
        try:
            token = (folder / MANIFEST_FILE).read_text("ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise StoreError(f"cannot read the manifest of {work_id}: {error}") from error
        try:
            manifest = _manifest_from_disk(token)
        except LicensingError as error:
            raise StoreError(f"the stored manifest of {work_id} is damaged: {error}") from error
        if manifest.work_id != work_id:
            return None
        work = WorkStore(folder, manifest, token)
        self._works[work_id] = work
        return work

    def get(self, work_id: str) -> WorkStore | None:
        """The work's store if this store holds (any piece of, or room for) it."""
        with self._lock:
            return self._get_locked(work_id)

    def work(self, work_id: str) -> WorkStore:
        work = self.get(work_id)
        if work is None:
            raise UnknownWorkError(f"this store holds nothing of work {work_id}")
        return work

    def __contains__(self, work_id: object) -> bool:
        return isinstance(work_id, str) and self.get(work_id) is not None

    def work_ids(self) -> list[str]:
        """Every work held, from the folders on disk (sorted).

        A manifest is parsed again only when its file changed (inode, size, mtime), so a
        listing costs one stat per work.
        """
        found: list[str] = []
        try:
            entries = sorted(p for p in self.root.iterdir() if not p.name.startswith("."))
        except OSError as error:
            raise _io_error(f"list {self.root}", error) from error
        listed: dict[str, tuple[tuple[int, int, int], str]] = {}
        for folder in entries:
            path = folder / MANIFEST_FILE
            try:
                info = path.stat()
                identity = (info.st_ino, info.st_size, info.st_mtime_ns)
                known = self._listed.get(folder.name)
                if known is not None and known[0] == identity:
                    work_id = known[1]
                else:
                    work_id = _manifest_from_disk(path.read_text("ascii")).work_id
            except (OSError, UnicodeDecodeError, LicensingError):
                continue
            listed[folder.name] = (identity, work_id)
            found.append(work_id)
        self._listed = listed  # folders gone from disk are forgotten
        return sorted(found)

    def reload(self, work_id: str) -> WorkStore | None:
        """The work's store with the bitfield re-read from disk (another process adds pieces)."""
        work = self.get(work_id)
        if work is not None:
            work.reload()
        return work

    def works(self) -> list[WorkStore]:
        return [w for w in (self.get(i) for i in self.work_ids()) if w is not None]

    def summary(self) -> list[tuple[str, int, int]]:
        """``(work id, verified pieces, piece count)`` for every work held."""
        return [(w.work_id, w.held_count, w.piece_count) for w in self.works()]

    def close(self, *, flush: bool = True) -> None:
        """Flush (unless told not to: see ``WorkStore.close``) and close every opened work."""
        with self._lock:
            works, self._works = list(self._works.values()), {}
        errors: list[StoreError] = []
        for work in works:
            try:
                work.close(flush=flush)
            except StoreError as error:
                errors.append(error)
        if errors:
            raise errors[0]


def _remove_tree(folder: Path) -> None:
    for child in folder.iterdir() if folder.exists() else ():
        with contextlib.suppress(OSError):
            child.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
