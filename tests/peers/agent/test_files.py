"""A replaced file is the old one or the new one, never a torn one, and no litter."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from peers.agent.files import atomic_file, write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    target = folder / "bitfield"
    target.write_bytes(b"old")

    def half_written() -> None:
        with atomic_file(target) as out:
            out.write(b"new, but ")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        half_written()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in folder.iterdir()) == ["bitfield"]


def test_a_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.jwt"
    target.write_bytes(b"a much longer old content")
    write_atomically(target, b"short", sync=False)
    assert target.read_bytes() == b"short"
    big = bytes(range(256)) * 40_000  # several os.write calls
    write_atomically(target, big)
    assert target.read_bytes() == big


def test_private_files_are_owner_only_from_the_first_byte(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    write_atomically(target, b"{}", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
