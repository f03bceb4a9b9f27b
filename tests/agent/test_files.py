"""A replaced file is the old one or the new one, never a torn one, and no litter."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.files import atomic_file, write_atomically


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
    with atomic_file(target, mode=0o600) as out:
        out.write(b"{")
        # Before the rename: the temporary file already has the final permissions.
        [temporary] = [p for p in tmp_path.iterdir() if p.name.startswith(".config.json.")]
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
        out.write(b"}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"{}"


def test_the_single_writer_mode_replaces_in_place_and_cleans_up(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    target = folder / "bitfield"
    for content in (b"\x00\x00", b"\xff\x01", b"\x80\x00"):
        write_atomically(target, content, sync=False, single_writer=True)
        assert target.read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == ["bitfield"]  # no ".bitfield.new"

    def torn() -> None:
        with atomic_file(target, single_writer=True) as out:
            out.write(b"\x01")
            raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        torn()
    assert target.read_bytes() == b"\x80\x00"
    assert sorted(p.name for p in folder.iterdir()) == ["bitfield"]
