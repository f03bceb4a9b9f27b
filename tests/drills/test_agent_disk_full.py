"""Drill 5: the buyer's disk fills up in the middle of a download (the agent's folder is
a small tmpfs, and another program takes every free block once a few pieces are in).
The agent stops with one clear line, leaves no copy that looks complete and marks no
piece it did not verify; once space is freed, `get` resumes from the verified pieces
and completes, with one purchase and one receipt.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from licensing.core import KeyRing, read_manifest, verify_piece
from licensing.core.bitfield import bitfield_indices
from tests.e2e.test_sale import _register, _seed
from tests.support.agents import AgentProcess
from tests.support.drills import Drill
from tests.support.platform import Platform
from tests.support.processes import wait_until
from tests.support.services import tmpfs

pytestmark = [pytest.mark.drill, pytest.mark.e2e, pytest.mark.slow]

PRICE = 500
PIECE = 256 * 1024


class DiskHog:
    """Another program that writes until the disk is full and keeps it full: every
    block anyone frees, it takes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stop = threading.Event()
        self.full = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        chunk = b"\0" * 65536
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while not self.stop.is_set():
                try:
                    os.write(descriptor, chunk if not self.full.is_set() else chunk[:4096])
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    self.full.set()
                    time.sleep(0.002)
        finally:
            os.close(descriptor)

    def __enter__(self) -> DiskHog:
        self.thread.start()
        assert self.full.wait(timeout=30)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _held(store: Path, count: int) -> list[int]:
    try:
        return bitfield_indices((store / "bitfield").read_bytes(), count)
    except (OSError, ValueError):
        return []


def test_a_disk_that_fills_mid_download_leaves_nothing_false_and_the_download_resumes(
    drill: Drill, tmp_path: Path
) -> None:
    site = drill.site
    work = _register(site, "Drill: disk full", width=1200, height=900, price_minor=PRICE)
    seeder = AgentProcess(tmp_path, "seed-rita", site.url)
    seeder.setup("rita", site.logins["rita"])
    _seed(seeder, site, work["id"], None)
    size = httpx.get(f"{site.url}/api/v1/works/{work['id']}/").json()["size_bytes"]
    count = -(-size // PIECE)
    assert count >= 8

    buyer = AgentProcess(tmp_path, "buyer", site.url)
    # Room for the work's pieces and its copy, and a little more: enough, until the hog.
    with tmpfs(buyer.home, size_bytes=2 * size + 2 * 1024 * 1024), seeder.serving():
        buyer.setup("bob", site.logins["bob"])
        store = buyer.home / "store" / str(work["id"])
        library = buyer.home / "library"
        get = buyer.start("get", str(work["id"]), "--limit-rate", "300K", stderr=True)
        wait_until(lambda: len(_held(store, count)) >= 3 or get.poll() is not None,
                   timeout=120, what="the first pieces to arrive")
        assert get.poll() is None, "the download ended before the disk filled"
        with DiskHog(buyer.home / "other-program.bin"):
            _, stderr = get.communicate(timeout=120)
        said = stderr.decode()
        assert get.returncode == 1
        assert "Traceback" not in said, said
        [error] = [line for line in said.splitlines() if line.startswith("error:")]
        assert said.strip().endswith(error), said  # one line, the last thing said
        assert "disk full" in error, error
        assert "Run `get` again to resume" in error, error

        # Nothing false was left: no copy under its name, no piece marked unverified.
        assert [p.name for p in library.iterdir() if not p.name.startswith(".")] == []
        held = _held(store, count)
        assert 0 < len(held) < count
        manifest = read_manifest((store / "manifest.jwt").read_text(), keyring=_keyring(site),
                                 now=int(time.time()))
        data = (store / "ciphertext").read_bytes()
        for index in held:
            offset = manifest.piece_offset(index)
            verify_piece(manifest, index, data[offset:offset + manifest.piece_length(index)])

        (buyer.home / "other-program.bin").unlink()  # space is freed
        result = buyer.run("get", str(work["id"]))

    assert result["held_before"] == len(held)
    assert result["pieces_fetched"] == count - len(held)  # resumed, not started over
    assert result["receipt"] == "sent"
    assert result["sha256"]
    with site.api("bob") as bob:
        mine = [p for p in bob.get("/api/v1/purchases/").json()["results"]
                if p["work"] == work["id"]]
    assert len(mine) == 1
    receipts = drill.postgres.sql(
        "SELECT output_sha256 FROM metering_receipt WHERE licence_id = %s", result["licence_id"])
    assert receipts == [(result["sha256"],)]
    drill.assert_books_balance()


def _keyring(site: Platform) -> KeyRing:
    return KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
