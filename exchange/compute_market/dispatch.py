"""Handing units to contributors' devices, in batches, with no hot row.

The queue is the units table itself: a partial index holds only units with slots to
hand out, and a batch takes up to N of them with ``SELECT … FOR UPDATE SKIP LOCKED``,
so concurrent contributors take different units without waiting on each other, then
moves their counters with one UPDATE and records the assignments with one INSERT.
A device never gets a unit its member already holds a live assignment of (so a
quorum is always of different members), nor a job it cannot run (memory cap, runtime
profile), nor units of a job its customer has cancelled that no device has started.

Assignments not returned by their deadline are reclaimed: the slot is reopened for
another device. Celery beat does it every few seconds, and dispatch does a small
amount of it too, so the queue keeps moving where beat is not running.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from exchange.accounts.models import User
from exchange.compute_market.contributors import contributor_for, standing_apply
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    JobState,
    UnitState,
    WorkUnit,
)
from exchange.compute_market.unit_decisions import units_decide

MAX_BATCH = 256
_RECLAIM_EVERY = 2.0  # seconds between the reclaims dispatch does itself, per process


class _ReclaimClock:
    """When this process last reclaimed overdue assignments itself."""

    lock = threading.Lock()
    last = 0.0


@dataclass(frozen=True)
class Dispatched:
    assignment: Assignment
    unit: WorkUnit
    job: ComputeJob


def units_dispatch(*, user: User, device_id: str, max_units: int,
                   now: dt.datetime | None = None) -> list[Dispatched]:
    """Up to ``max_units`` units for this device, each now assigned to it."""
    contributor = contributor_for(user=user, device_id=device_id)
    now = now or timezone.now()
    _maybe_reclaim(now)
    wanted = max(1, min(int(max_units), MAX_BATCH))
    held_by_member = Assignment.objects.filter(
        unit=OuterRef("pk"), user=user,
        state__in=(AssignmentState.ISSUED, AssignmentState.RETURNED))
    with transaction.atomic():
        units = list(
            WorkUnit.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=UnitState.PENDING, open_slots__gt=0,
                    job__state=JobState.RUNNING, job__deadline__gt=now,
                    job__runtime=contributor.runtime,
                    job__memory_bytes__lte=contributor.memory_bytes)
            .filter(Q(job__cancel_requested_at__isnull=True) | Q(issued_count__gt=0))
            .exclude(Exists(held_by_member))
            .order_by("id")
            .only("id", "job_id", "seq", "fuel_cap", "input")[:wanted]
        )
        if not units:
            return []
        WorkUnit.objects.filter(pk__in=[u.pk for u in units]).update(
            open_slots=F("open_slots") - 1, issued_count=F("issued_count") + 1)
        jobs = {job.pk: job for job in ComputeJob.objects.filter(
            pk__in={u.job_id for u in units}).select_related("module").defer("module__wasm")}
        assignments = Assignment.objects.bulk_create([
            Assignment(unit=unit, job_id=unit.job_id, device=contributor.device, user=user,
                       issued_at=now,
                       deadline=now + dt.timedelta(seconds=jobs[unit.job_id].unit_seconds))
            for unit in units
        ])
        # bulk_create sets primary keys on PostgreSQL and SQLite 3.35+ (RETURNING).
        contributor.last_seen_at = now
        type(contributor).objects.filter(pk=contributor.pk).update(last_seen_at=now)
    return [Dispatched(assignment=a, unit=u, job=jobs[u.job_id])
            for a, u in zip(assignments, units, strict=True)]


def _maybe_reclaim(now: dt.datetime) -> None:
    clock = time.monotonic()
    with _ReclaimClock.lock:
        if clock - _ReclaimClock.last < _RECLAIM_EVERY:
            return
        _ReclaimClock.last = clock
    assignments_reclaim_overdue(now=now, limit=100)


def assignments_reclaim_overdue(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Expire assignments past their deadline and reopen their units' slots.

    Safe to run from several processes: the overdue rows are taken with SKIP LOCKED and
    their units decided again under the units' locks.
    """
    now = now or timezone.now()
    with transaction.atomic():
        overdue = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(state=AssignmentState.ISSUED, deadline__lt=now)
            .order_by("deadline").values_list("pk", "unit_id", "device_id")[:limit]
        )
        if not overdue:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _, _ in overdue]).update(
            state=AssignmentState.EXPIRED)
        expired: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for _, _, device_id in overdue:
            expired[device_id]["expired"] += 1
        standing_apply(expired)
        units_decide(unit_ids=sorted({unit_id for _, unit_id, _ in overdue}), now=now)
    return len(overdue)
