"""The piece store: verified pieces only, an atomic bitfield, resume, and clear I/O errors."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

import agent.store as store_module
from agent.store import (
    BITFIELD_FILE,
    DIRTY_FILE,
    LOCK_FILE,
    PieceStore,
    StoreError,
    WorkStore,
    boot_id,
)
from licensing.core import (
    BadPieceError,
    BadSignatureError,
    PieceOutOfRangeError,
    package_work,
    read_piece,
    sign_manifest,
)
from licensing.core.bitfield import bitfield_indices
from tests.licensing.core_support import DAY, NOW, WORK_ID, Sale


def piece(sale: Sale, index: int) -> bytes:
    return read_piece(sale.packaged.ciphertext_path, sale.manifest, index)


def test_a_piece_round_trips_through_the_store(sale: Sale, tmp_path: Path) -> None:
    store = PieceStore(tmp_path / "s")
    work = store.add_work(sale.manifest_token, keyring=sale.agent_ring, now=NOW)

    assert work.write_piece(2, piece(sale, 2)) is True
    assert work.write_piece(2, piece(sale, 2)) is False  # already held: nothing written

    assert work.read_piece(2) == piece(sale, 2)
    assert work.have(2)
    assert work.held() == [2]
    assert work.missing() == [i for i in range(sale.manifest.piece_count) if i != 2]
    assert not work.complete
    # the same layout as the platform's ciphertext file
    with open(work.ciphertext_path, "rb") as stream:
        stream.seek(sale.manifest.piece_offset(2))
        assert stream.read(sale.manifest.piece_length(2)) == piece(sale, 2)


def test_it_refuses_a_bad_piece_before_writing_a_byte(sale: Sale, tmp_path: Path) -> None:
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)
    good = piece(sale, 1)
    wrong_bytes = bytes([good[0] ^ 1]) + good[1:]

    for bad in (wrong_bytes, good[:-1], good + b"x", piece(sale, 0)):
        with pytest.raises(BadPieceError):
            work.write_piece(1, bad)
    with pytest.raises(PieceOutOfRangeError):
        work.write_piece(sale.manifest.piece_count, good)

    assert not work.have(1)
    with open(work.ciphertext_path, "rb") as stream:
        stream.seek(sale.manifest.piece_offset(1))
        assert stream.read(len(good)) == bytes(len(good))  # nothing written
    assert (work.folder / BITFIELD_FILE).read_bytes() == bytes(2)
    with pytest.raises(StoreError, match="not held"):
        work.read_piece(1)


def test_the_bitfield_is_in_bittorrent_order_and_replaced_atomically(
    sale: Sale, tmp_path: Path
) -> None:
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)
    for index in (0, 9, 12):
        work.write_piece(index, piece(sale, index))

    # 13 pieces: bit i is the (i % 8)-th most significant bit of byte i // 8; spare bits zero.
    assert work.bitfield() == bytes([0b1000_0000, 0b0100_1000])
    assert (work.folder / BITFIELD_FILE).read_bytes() == work.bitfield()
    assert sorted(p.name for p in work.folder.iterdir()) == [
        BITFIELD_FILE, "ciphertext", DIRTY_FILE, "manifest.jwt", LOCK_FILE,
    ]  # no temporary file left behind


def test_a_failed_bitfield_write_leaves_the_piece_unmarked(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)
    work.write_piece(0, piece(sale, 0))

    def no_rename(source: str, target: str) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(StoreError, match="bitfield"):
        work.write_piece(3, piece(sale, 3))
    monkeypatch.undo()

    assert not work.have(3)
    assert work.held() == [0]
    assert bitfield_indices((work.folder / BITFIELD_FILE).read_bytes(), 13) == [0]
    assert [p.name for p in work.folder.iterdir() if p.name.startswith(".")] == []


def test_a_reopened_store_resumes_from_its_verified_pieces(sale: Sale, tmp_path: Path) -> None:
    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    for index in (1, 4, 5):
        work.write_piece(index, piece(sale, index))
    store.close()

    again = PieceStore(tmp_path / "s").work(WORK_ID)

    assert again.held() == [1, 4, 5]
    assert again.read_piece(4) == piece(sale, 4)
    assert not (again.folder / DIRTY_FILE).exists()  # closed cleanly
    assert PieceStore(tmp_path / "s").work_ids() == [WORK_ID]


def test_after_a_crash_marked_pieces_are_rechecked_and_bad_ones_unmarked(
    sale: Sale, tmp_path: Path
) -> None:
    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    for index in (1, 2, 3):
        work.write_piece(index, piece(sale, index))
    # The process dies without flushing (the dirty marker stays), the machine dies too
    # (it comes back with another boot id), and piece 2's bytes were lost although its
    # mark reached the disk.
    assert (work.folder / DIRTY_FILE).read_text() == boot_id()
    (work.folder / DIRTY_FILE).write_text("the-boot-before-the-power-cut")
    with open(work.ciphertext_path, "r+b") as stream:
        stream.seek(sale.manifest.piece_offset(2))
        stream.write(bytes(100))
    work._drop_writer_lock()  # what the OS does when it ends the dead process

    again = PieceStore(tmp_path / "s").work(WORK_ID)

    assert again.held() == [1, 3]
    assert bitfield_indices((again.folder / BITFIELD_FILE).read_bytes(), 13) == [1, 3]


def test_after_a_killed_process_on_the_same_boot_the_marks_are_trusted_and_flushed(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert boot_id()  # Linux says which boot this is
    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    for index in (1, 2, 3):
        work.write_piece(index, piece(sale, index))
    work._drop_writer_lock()  # killed: what it wrote is in the page cache

    def no_recheck(self: WorkStore, *, indices: object = None) -> list[int]:
        raise AssertionError("a same-boot reopen re-hashed the work")

    monkeypatch.setattr(WorkStore, "recheck", no_recheck)
    again = PieceStore(tmp_path / "s").work(WORK_ID)
    assert again.held() == [1, 2, 3]
    assert not (again.folder / DIRTY_FILE).exists()  # flushed by the reopening process
    assert again.read_piece(2) == piece(sale, 2)


def test_close_without_flush_leaves_the_flush_to_the_next_opener(
    sale: Sale, tmp_path: Path
) -> None:
    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    for index in (0, 7):
        work.write_piece(index, piece(sale, index))
    store.close(flush=False)
    assert (work.folder / DIRTY_FILE).read_text() == boot_id()
    assert bitfield_indices((work.folder / BITFIELD_FILE).read_bytes(), 13) == [0, 7]

    again = PieceStore(tmp_path / "s").work(WORK_ID)
    assert again.held() == [0, 7]
    assert not (again.folder / DIRTY_FILE).exists()


def test_without_a_boot_id_a_dirty_store_is_always_rechecked(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    for index in (1, 2):
        work.write_piece(index, piece(sale, index))
    store.close(flush=False)
    with open(work.ciphertext_path, "r+b") as stream:
        stream.seek(sale.manifest.piece_offset(1))
        stream.write(bytes(10))
    monkeypatch.setattr(store_module, "BOOT_ID_FILE", tmp_path / "no-such-file")
    assert store_module.boot_id() == ""

    again = PieceStore(tmp_path / "s").work(WORK_ID)
    assert again.held() == [2]


def test_a_full_disk_raises_a_clear_error_and_marks_nothing(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)

    def disk_full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", disk_full)
    with pytest.raises(StoreError, match="disk full"):
        work.write_piece(0, piece(sale, 0))
    monkeypatch.undo()

    assert not work.have(0)
    assert PieceStore(tmp_path / "s").work(WORK_ID).held() == []


def test_adding_a_work_reserves_its_space_or_fails_cleanly(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full)
    store = PieceStore(tmp_path / "s")
    with pytest.raises(StoreError, match="disk full"):
        store.add_verified(sale.manifest, sale.manifest_token)

    assert store.get(WORK_ID) is None
    assert list((tmp_path / "s").iterdir()) == []


def test_import_ciphertext_keeps_every_piece_that_verifies(sale: Sale, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.ciphertext"
    shutil.copy(sale.packaged.ciphertext_path, damaged)
    with open(damaged, "r+b") as stream:
        stream.seek(sale.manifest.piece_offset(6) + 10)
        stream.write(b"\xff\xfe")
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)

    result = work.import_ciphertext(damaged)

    assert result.bad == (6,)
    assert result.imported == sale.manifest.piece_count - 1
    assert work.missing() == [6]
    assert work.read_piece(7) == piece(sale, 7)


def test_a_manifest_whose_signature_fails_is_refused(sale: Sale, tmp_path: Path) -> None:
    header, claims, signature = sale.manifest_token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    forged = f"{header}.{claims}.{signature[:10]}{flipped}{signature[11:]}"
    store = PieceStore(tmp_path / "s")

    with pytest.raises(BadSignatureError):
        store.add_work(forged, keyring=sale.agent_ring, now=NOW)
    assert store.get(WORK_ID) is None


def test_a_work_held_under_another_packaging_is_refused(sale: Sale, tmp_path: Path) -> None:
    store = PieceStore(tmp_path / "s")
    store.add_verified(sale.manifest, sale.manifest_token)
    repackaged = package_work(
        tmp_path / "platform" / "master.bin",
        tmp_path / "again.ciphertext",
        work_id=WORK_ID,
        piece_size=sale.manifest.piece_size,
    )
    token = sign_manifest(
        repackaged.manifest, keyring=sale.ring, issued_at=NOW - DAY, expires_at=NOW + DAY
    )

    with pytest.raises(StoreError, match="another manifest"):
        store.add_work(token, keyring=sale.agent_ring, now=NOW)


def test_another_process_reads_what_a_live_writer_adds_but_cannot_write_it(
    sale: Sale, tmp_path: Path
) -> None:
    writer = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)
    writer.write_piece(0, piece(sale, 0))
    # The daemon (another process) opens the work while the download is still running:
    # it must not "recover" the writer's work, only read it.
    daemon = PieceStore(tmp_path / "s")
    seen = daemon.work(WORK_ID)
    assert seen.held() == [0]

    writer.write_piece(5, piece(sale, 5))
    assert daemon.reload(WORK_ID) is seen
    assert seen.held() == [0, 5]
    assert seen.read_piece(5) == piece(sale, 5)
    with pytest.raises(StoreError, match="another agent process is writing"):
        seen.write_piece(6, piece(sale, 6))

    writer.close()  # the download ends cleanly: the daemon may write again
    assert seen.write_piece(6, piece(sale, 6)) is True


def test_listing_the_works_parses_a_manifest_only_when_it_changed(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.store as store_module

    store = PieceStore(tmp_path / "s")
    work = store.add_verified(sale.manifest, sale.manifest_token)
    parsed: list[str] = []
    real = store_module._manifest_from_disk

    def counting(token: str):  # type: ignore[no-untyped-def]
        parsed.append(token)
        return real(token)

    monkeypatch.setattr(store_module, "_manifest_from_disk", counting)
    assert store.work_ids() == [WORK_ID]
    assert store.work_ids() == [WORK_ID]
    assert len(parsed) == 1  # the second listing was one stat
    manifest = work.folder / "manifest.jwt"
    info = manifest.stat()
    os.utime(manifest, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))  # rewritten
    assert store.work_ids() == [WORK_ID]
    assert len(parsed) == 2
    manifest.write_text("not a manifest", "ascii")
    assert store.work_ids() == []  # unreadable now: not listed, not served
    store.close()
    shutil.rmtree(work.folder)
    assert store.work_ids() == []
