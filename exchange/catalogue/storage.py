"""Where masters and previews live on disk: under the data folder, never the web root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from django.conf import settings


def master_abspath(relative: str) -> Path:
    path = (settings.MASTERS_DIR / relative).resolve()
    if settings.MASTERS_DIR.resolve() not in path.parents:
        raise ValueError("master path escapes the masters folder")
    return path


def preview_abspath(relative: str) -> Path:
    path = (settings.PREVIEWS_DIR / relative).resolve()
    if settings.PREVIEWS_DIR.resolve() not in path.parents:
        raise ValueError("preview path escapes the previews folder")
    return path


def master_store(*, work_id: str, stream: BinaryIO) -> tuple[str, int]:
    """Copy an upload into place atomically (temp file, fsync, rename); return path and size."""
    relative = f"{work_id}/master"
    final = master_abspath(relative)
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = final.with_suffix(".partial")
    stream.seek(0)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    os.replace(partial, final)
    return relative, size


def work_files_remove(*, work_id: str) -> None:
    """Undo ``master_store`` when the database write it belonged to failed."""
    shutil.rmtree(settings.MASTERS_DIR / str(work_id), ignore_errors=True)
    shutil.rmtree(settings.PREVIEWS_DIR / str(work_id), ignore_errors=True)
