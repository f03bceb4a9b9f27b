"""Back up the platform: its database and the files its rows point at, as one folder.

What matters is the order. Accepted metering orders wait in Redis, so they are flushed
into the database first. The database is dumped next (one consistent snapshot, taken
while the platform runs), and the files copied after it: masters and ciphertext are
written before the row that names them commits and never change afterwards, so every
row in the dump finds its files in the copy (files of works registered meanwhile are
copied too, and harmlessly unused after a restore). The key-encryption key is left out
on purpose: it must be kept apart from the backup it unlocks (docs/OPERATIONS.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from exchange.metering.services import metering_flush

# The data folder's parts a restore needs; previews could be remade, but cost little.
FOLDERS = ("masters", "ciphertext", "previews")
DUMP = "database.dump"
SQLITE = "peermark.sqlite3"
SUMMARY = "BACKUP.json"


class BackupError(Exception):
    """The backup could not be made; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupSummary:
    created_at: str
    database: str
    flushed_orders: int
    files: int
    file_bytes: int


def _pg_dump(target: Path) -> None:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
               f"--file={target}", f"--dbname={db['NAME']}"]
    command += [f"--{flag}={db[key]}" for flag, key in
                (("host", "HOST"), ("port", "PORT"), ("username", "USER")) if db.get(key)]
    try:  # a fixed program; the arguments are the platform's own settings, not input
        result = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603
                                check=False, timeout=24 * 3600)
    except FileNotFoundError as exc:
        raise BackupError("pg_dump is not installed (PostgreSQL's client tools)") from exc
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[-500:]}")


def _sqlite_copy(target: Path) -> None:
    """SQLite's online backup: a consistent copy while the platform keeps writing."""
    connection.ensure_connection()
    source = connection.connection
    with sqlite3.connect(target) as copy:
        source.backup(copy)
    copy.close()


def backup_make(dest: Path, *, progress: Callable[[str], None] = lambda _line: None
                ) -> BackupSummary:
    """Write a backup into ``dest``, a folder that must not exist yet."""
    try:
        dest.mkdir(parents=True)
    except FileExistsError as exc:
        raise BackupError(f"{dest} exists already: back up into a new folder") from exc
    flushed = metering_flush(min_idle_ms=0)
    progress(f"metering: {flushed} waiting order(s) flushed into the database")
    if connection.vendor == "postgresql":
        _pg_dump(dest / DUMP)
    elif connection.vendor == "sqlite":
        _sqlite_copy(dest / SQLITE)
    else:
        raise BackupError(f"no backup method for {connection.vendor}")
    progress(f"database: {connection.vendor} copied")
    files = size = 0
    for name in FOLDERS:
        source = Path(settings.DATA_DIR) / name
        if not source.is_dir():
            continue
        shutil.copytree(source, dest / "data" / name)
        count, folder_bytes = _tally(dest / "data" / name)
        files, size = files + count, size + folder_bytes
        progress(f"{name}/: {count} file(s), {folder_bytes:,} bytes")
    summary = BackupSummary(created_at=timezone.now().astimezone(dt.UTC).isoformat(),
                            database=connection.vendor, flushed_orders=flushed, files=files,
                            file_bytes=size)
    (dest / SUMMARY).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def _tally(folder: Path) -> tuple[int, int]:
    sizes = [path.stat().st_size for path in folder.rglob("*") if path.is_file()]
    return len(sizes), sum(sizes)
