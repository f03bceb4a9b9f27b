"""The periodic jobs, run by Celery beat in production and by ``run_periodic_jobs`` in the
embedded default (which has no broker, so no beat). Both read one schedule:
``CELERY_BEAT_SCHEDULE``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict, cast

from django.conf import settings
from django.db import close_old_connections

from exchange.celery import app as celery_app

log = logging.getLogger(__name__)


class BeatEntry(TypedDict):
    """One entry of ``CELERY_BEAT_SCHEDULE`` as settings.py writes them: every so many
    seconds (no crontabs, which this runner could not follow)."""

    task: str
    schedule: float


@dataclass
class Job:
    name: str
    task: str
    every: float
    due: float = 0.0


def jobs() -> list[Job]:
    celery_app.loader.import_default_modules()  # register every app's tasks
    # The type checker reads settings.py's literal as dict[str, dict[str, object]].
    schedule = cast(dict[str, BeatEntry], settings.CELERY_BEAT_SCHEDULE)
    return [Job(name, str(entry["task"]), float(entry["schedule"]))
            for name, entry in schedule.items()]


def run_due(schedule: list[Job], *, now: float) -> list[str]:
    """Run every job whose time has come, in this process; return their names."""
    ran = []
    for job in schedule:
        if now < job.due:
            continue
        job.due = now + job.every
        close_old_connections()
        try:
            celery_app.tasks[job.task].run()
        except Exception:
            # One failing job must not stop the others; it runs again at its next turn.
            log.exception("periodic job %s failed", job.name)
        ran.append(job.name)
    return ran


def run_forever(*, tick: float = 1.0, clock: Callable[[], float] = time.monotonic,
                stop: Callable[[], bool] = lambda: False) -> None:
    schedule = jobs()
    while not stop():
        run_due(schedule, now=clock())
        time.sleep(tick)
