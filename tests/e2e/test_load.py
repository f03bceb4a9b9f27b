"""The load run (benchmarks/load/) in its smoke size: a few seconds of peer agents,
serving agents and buyers against a real platform (PostgreSQL, Redis, gunicorn, a Celery
worker and beat). No timing is asserted: only that no request failed, every accepted
order is recorded exactly once, every receipted purchase settled, and the books balance."""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from pathlib import Path

import pytest

from benchmarks.load.run import SMOKE, run_once, smoke_options

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_a_short_load_run_fails_nothing_and_leaves_the_books_balanced(tmp_path: Path) -> None:
    options = smoke_options(
        pg_server=os.environ["DATABASE_URL"].rsplit("/", 1)[0],
        database=f"peermark_load_{uuid.uuid4().hex[:10]}",
        # A Redis of its own when the server binary is here (the metering stream's keys
        # are fixed names); else the suite's.
        redis_url="" if shutil.which("redis-server") else os.environ["REDIS_URL"],
    )
    result = run_once(dataclasses.replace(SMOKE), options, tmp_path)

    assert result.failures() == []
    assert result.books == []  # manage.py check_books ran and found nothing
    assert result.purchases > 0
    assert result.receipts == result.purchases == result.settled
    assert result.accepted == result.recorded == result.signed > 0
    assert sum(len(v) for v in result.latencies.values()) > 0
