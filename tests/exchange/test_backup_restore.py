"""Backup and restore, as docs/OPERATIONS.md tells an operator to do it.

A platform with sales, a refund, a payout and a real photograph on sale is backed up with
``manage.py backup``; the dump is restored into a fresh database (PostgreSQL: pg_restore
into a new database; the embedded default: the SQLite copy in a new data folder), the
files into a new data folder, and the restored platform, run as its own process with
the key-encryption key given apart, must hold the same rows and pass ``check_books
--deep``: the books balance, every licence verifies, every manifest signs and verifies,
every work's keys unwrap and its ciphertext and master match. Then the same restore
with a damaged file, and with the wrong key-encryption key, must say so.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from exchange.licensing.keys import key_encryption_key
from tests.support.processes import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

COUNTS = """
import json
from exchange.ledger.models import JournalEntry, Posting
from exchange.licensing.models import Licence, WorkPackage
from exchange.purchases.models import Purchase
from exchange.payments.models import Payout, TopUp
print(json.dumps({m.__name__: m.objects.count() for m in
                  (JournalEntry, Posting, Licence, WorkPackage, Purchase, Payout, TopUp)}))
"""


@pytest.fixture
def trading(rita, bob, carol, make_work, fund, device_of,
            django_capture_on_commit_callbacks) -> dict[str, Any]:
    import skimage.data

    from exchange.payments.services import payout_request
    from exchange.purchases.services import purchase_create, purchase_refund, purchase_settle

    photo = (Path(skimage.data.__file__).parent / "retina.jpg").read_bytes()
    fund(bob, 20_000)
    _keys, device = device_of(bob)
    works = [make_work(rita, title="Retina", data=photo, price_minor=4_000),
             make_work(rita, title="Harbour", price_minor=3_000),
             make_work(rita, title="Dunes", price_minor=1_500)]
    settled, refunded, _held = (
        purchase_create(buyer=bob, work_id=w.pk, device_id=device.device_id) for w in works)
    purchase_settle(purchase_id=settled.pk, peer_bytes={carol.pk: 10_000})
    purchase_refund(purchase_id=refunded.pk, reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        payout_request(user=rita, source="earnings", amount_minor=1_000, currency="EUR")
    return {"works": works}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def fresh_database() -> Iterator[str | None]:
    """A new, empty PostgreSQL database's URL (None on the embedded default)."""
    if connection.vendor != "postgresql":
        yield None
        return
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{base}/{name}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _restore(backup: Path, data_dir: Path, database: str | None) -> dict[str, str]:
    """The procedure in docs/OPERATIONS.md, step by step; returns the restored platform's
    environment."""
    data_dir.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "PEERMARK_KEY_ENCRYPTION_KEY")}
    if database is not None:
        subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                        f"--dbname={database}", str(backup / "database.dump")],
                       check=True, capture_output=True, timeout=300)
        env["DATABASE_URL"] = database
    else:
        shutil.copy2(backup / "peermark.sqlite3", data_dir / "peermark.sqlite3")
    shutil.copytree(backup / "data", data_dir, dirs_exist_ok=True)
    env["PEERMARK_DATA_DIR"] = str(data_dir)
    env["PEERMARK_KEY_ENCRYPTION_KEY"] = base64.b64encode(key_encryption_key()).decode()
    return env


def test_a_backup_restores_into_a_fresh_database_and_everything_verifies(
        trading, tmp_path, fresh_database) -> None:
    from exchange.operations.books import books_check

    assert books_check() == []
    backup = tmp_path / "backup"
    call_command("backup", str(backup), stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert json.loads((backup / "BACKUP.json").read_text())["files"] >= 3 * 2  # masters, pmc
    assert not (backup / "data" / "key_encryption_key").exists()  # kept apart, on purpose

    env = _restore(backup, tmp_path / "restored", fresh_database)
    assert _manage("migrate", "--check", env=env).returncode == 0  # nothing left to apply
    counted = _manage("shell", "-c", COUNTS, env=env)
    assert json.loads(counted.stdout.strip().splitlines()[-1]) == {
        # entries: 1 top-up, 3 purchases, 1 settlement, 1 refund, the payout requested and
        # paid; postings: 2 each, but the settlement's 4 (escrow, royalty, fee, seeder)
        "JournalEntry": 8, "Posting": 18, "Licence": 3, "WorkPackage": 3, "Purchase": 3,
        "Payout": 1, "TopUp": 1}
    checked = _manage("check_books", "--deep", "--json", env=env)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert json.loads(checked.stdout.strip().splitlines()[-1]) == []


def test_a_restore_with_a_damaged_file_or_the_wrong_key_says_so(
        trading, tmp_path, fresh_database) -> None:
    backup = tmp_path / "backup"
    call_command("backup", str(backup), stdout=open(os.devnull, "w"))  # noqa: SIM115
    env = _restore(backup, tmp_path / "restored", fresh_database)
    retina = trading["works"][0].pk
    damaged = tmp_path / "restored" / "ciphertext" / f"{retina}.pmc"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    checked = _manage("check_books", "--deep", "--json", env=env)
    assert checked.returncode == 1
    problems = json.loads(checked.stdout.strip().splitlines()[-1])
    assert len(problems) == 1
    assert problems[0].startswith(f"work {retina}: its ciphertext does not match the manifest")

    wrong = {**env, "PEERMARK_KEY_ENCRYPTION_KEY": base64.b64encode(b"\x07" * 32).decode()}
    checked = _manage("check_books", "--deep", "--json", env=wrong)
    assert checked.returncode == 1
    assert json.loads(checked.stdout.strip().splitlines()[-1]) == [
        "the platform's signing keys do not unwrap under this key-encryption key: restore "
        "the KEK that was in use (docs/OPERATIONS.md)"]


def test_a_backup_never_overwrites_an_earlier_one(tmp_path) -> None:
    from django.core.management.base import CommandError

    (tmp_path / "backup").mkdir()
    with pytest.raises(CommandError, match="exists already"):
        call_command("backup", str(tmp_path / "backup"))
