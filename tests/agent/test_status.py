"""`status` lists what the agent holds and what it uploaded lately, as text and as JSON.

The sale's work: 13 pieces, 12 of 262,160 ciphertext bytes (256 KiB and a 16-byte
tag) and one of 12,361; the whole ciphertext is 3,158,073 + 13 x 16 = 3,158,281 bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import AgentHome
from agent.library import LicenceBook, OwnedLicence, WorkTitles
from agent.outbox import OrderOutbox
from licensing.core import Order
from tests.agent.fake_platform import FakePlatform, logged_in_home, page
from tests.agent.support import holder_store
from tests.licensing.core_support import WORK_ID, Sale

PIECE = 262_160


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentHome:
    platform = FakePlatform()
    platform.on("GET", "/api/v1/works/", page([]))
    platform.install(monkeypatch)
    return logged_in_home(tmp_path / "agent")


def served(home: AgentHome, at: float, *, work_id: str, piece: int, device: str,
           byte_count: int = PIECE) -> None:
    outbox = OrderOutbox(home.outbox_path, clock=lambda: at)
    order = Order(licence_id=f"licence-{device}", peer_id="this-peer", piece=piece,
                  byte_count=byte_count, nonce=uuid.uuid4().hex, issued_at=int(at),
                  device_id=device)
    outbox.append(f"token-{order.nonce}", order, work_id=work_id)
    outbox.close()


def bought(home: AgentHome, title: str) -> None:
    LicenceBook(home.licences_dir).save(OwnedLicence(
        licence_id=str(uuid.uuid4()), work_id=WORK_ID, title=title, content_type="image/jpeg",
        token="t", manifest="m", purchase_id=str(uuid.uuid4()), expires_at="2031-01-01"))


def status(capsys: pytest.CaptureFixture[str], home: AgentHome, *extra: str) -> str:
    assert main(["--data-dir", str(home.root), "status", *extra]) == 0
    return capsys.readouterr().out


def test_status_lists_holdings_and_recent_uploads(sale: Sale, home: AgentHome, capsys) -> None:
    store, _work = holder_store(sale, home.store_dir, pieces=range(4))
    store.close()
    bought(home, "Harbour at dawn")
    now = time.time()
    served(home, now - 120, work_id=WORK_ID, piece=0, device="bob")
    served(home, now - 125, work_id=WORK_ID, piece=1, device="bob")
    served(home, now - 130, work_id=WORK_ID, piece=2, device="carol")
    served(home, now - 2 * 86400 - 60, work_id="other-work", piece=0, device="dan",
           byte_count=1000)
    served(home, now - 8 * 86400, work_id=WORK_ID, piece=3, device="erin")  # too old

    lines = status(capsys, home).splitlines()
    start = lines.index("Holdings:")
    assert lines[start:] == [
        "Holdings:",
        "  WORK" + " " * 32 + "  TITLE" + " " * 10 + "  PIECES    BYTES",
        f"  {WORK_ID}  Harbour at dawn    4/13  1.0 MiB",
        "Uploads in the last 7 days:",
        "  WORK" + " " * 32 + "  TITLE" + " " * 10 + "     SERVED  PIECES  PEERS  LAST",
        f"  {WORK_ID}  Harbour at dawn  768.0 KiB       3      2  2 min ago",
        "  other-work" + " " * 26 + "  -" + " " * 14 + "     1000 B       1      1  2 days ago",
    ]
    assert "orders waiting for metering: 5" in lines


def test_status_json_gives_the_same(sale: Sale, home: AgentHome, capsys) -> None:
    store, _work = holder_store(sale, home.store_dir, pieces=range(4))
    store.close()
    WorkTitles(home.titles_path).keep({WORK_ID: "Harbour at dawn"}, held={WORK_ID})
    served(home, time.time() - 8 * 86400, work_id=WORK_ID, piece=9, device="old")
    recently = int(time.time()) - 60
    served(home, recently, work_id=WORK_ID, piece=0, device="bob")
    served(home, recently + 1, work_id=WORK_ID, piece=12, device="bob", byte_count=12_361)

    data = json.loads(status(capsys, home, "--json"))
    assert data["holdings"] == [{
        "work_id": WORK_ID, "title": "Harbour at dawn", "pieces_held": 4, "pieces": 13,
        "bytes_held": 4 * PIECE, "size_bytes": 3_158_281}]
    iso = dt.datetime.fromtimestamp(recently, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    iso_last = dt.datetime.fromtimestamp(recently + 1, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["recent_uploads"] == [{
        "work_id": WORK_ID, "title": "Harbour at dawn", "bytes": PIECE + 12_361, "pieces": 2,
        "peers": 1, "first_at": iso, "last_at": iso_last}]


def test_status_with_nothing_held_or_served_says_so(home: AgentHome, capsys) -> None:
    out = status(capsys, home)
    assert out.splitlines()[-2:] == [
        "Holdings: none yet (`get` a work, then `serve` shares its pieces).",
        "Uploads in the last 7 days: none.",
    ]
    assert not home.outbox_path.exists()  # reading the status makes no outbox


def test_titles_are_kept_only_for_works_still_held(tmp_path: Path) -> None:
    titles = WorkTitles(tmp_path / "titles.json")
    titles.keep({"a": "Alpha", "b": "Beta"}, held={"a", "b"})
    titles.keep({"c": "Gamma"}, held={"a", "c"})
    assert titles.all() == {"a": "Alpha", "c": "Gamma"}
    (tmp_path / "titles.json").write_text("[damaged")
    assert titles.all() == {}
