"""Replacing a file so that a crash leaves the old one or the new one, never a torn one.

Every file the agent keeps (its config and keys, a work's manifest and bitfield, a
delivered copy) is written to a temporary file beside its final name and renamed onto
it; the rename is atomic on one file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class Writer:
    """Writes whole buffers to a file descriptor (``os.write`` may write less)."""

    def __init__(self, descriptor: int) -> None:
        self._fd = descriptor

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]


@contextlib.contextmanager
def atomic_file(destination: Path, *, sync: bool = True, mode: int | None = None,
                suffix: str = "", single_writer: bool = False) -> Iterator[Writer]:
    """A temporary file beside ``destination``, renamed onto it if the block succeeds.

    ``sync`` fsyncs the file before the rename and the folder after it (best effort),
    so the new content survives a power cut once the block has returned. ``mode`` sets
    the permissions before any byte is written (owner-only for keys and tokens).
    ``single_writer`` is for a file that one writer, holding its lock, replaces after
    every piece (a bitfield): a fixed temporary name costs a handful of system calls
    where a unique one costs several more.
    """
    folder = destination.parent
    if single_writer:
        temporary = str(destination.with_name(f".{destination.name}.new"))
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    else:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{destination.name}.",
                                                 suffix=suffix)
    try:
        try:
            if mode is not None:
                os.fchmod(descriptor, mode)
            yield Writer(descriptor)
            if sync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if sync:
        with contextlib.suppress(OSError):  # the rename is done; a folder sync is best effort
            fsync_folder(folder)


def write_atomically(path: Path, data: bytes, *, sync: bool = True,
                     mode: int | None = None, single_writer: bool = False) -> None:
    """Replace ``path`` with ``data`` (see ``atomic_file``)."""
    with atomic_file(path, sync=sync, mode=mode, single_writer=single_writer) as out:
        out.write(data)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
