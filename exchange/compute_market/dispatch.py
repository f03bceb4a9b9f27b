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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import BooleanField, Expression, F, Q, QuerySet
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
_WINDOW = 4 * MAX_BATCH  # queue entries read per step of a dispatch
_LIVE = (AssignmentState.ISSUED, AssignmentState.RETURNED)
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


class _InQueue(Expression):
    """``state = 'pending' AND open_slots > 0`` with its constants written into the SQL.

    That is exactly the predicate of the queue's partial index (``unit_open_queue``), and
    PostgreSQL matches a partial index only against constants, never against bound
    parameters: from its fifth use a statement is prepared
    (``PEERMARK_DB_PREPARE_THRESHOLD``), and its generic plan, with the state and the
    count as parameters, would walk the primary key past every closed unit there is.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self) -> None:
        super().__init__(output_field=BooleanField())
        self.state: Any = F("state")
        self.slots: Any = F("open_slots")

    def get_source_expressions(self) -> list[Any]:
        return [self.state, self.slots]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.state, self.slots = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str | int, ...]]:
        state, state_params = compiler.compile(self.state)
        slots, slots_params = compiler.compile(self.slots)
        assert UnitState.PENDING.value.isalpha()  # a literal that needs no quoting
        return (f"({state} = '{UnitState.PENDING.value}' AND {slots} > 0)",
                (*state_params, *slots_params))


def _take(queue: QuerySet[WorkUnit], user: User, wanted: int) -> list[WorkUnit]:
    """Lock up to ``wanted`` units of ``queue``, in id order, skipping those another
    transaction holds and those the member already has a live assignment of.

    The queue is read a window at a time: its head in id order (the partial index),
    then the member's assignments among them, then the rest locked with ``SKIP
    LOCKED``. Each statement is bounded by the window, whatever the planner's
    statistics say: as one query (an anti-join of the queue with the member's
    assignments) a freshly submitted job, not yet analysed, was planned as a nested
    loop over every pending unit and every assignment of the member's: seconds a call.
    """
    taken: list[WorkUnit] = []
    after = 0
    while len(taken) < wanted:
        window = list(queue.filter(pk__gt=after).order_by("id")
                      .values_list("pk", flat=True)[:_WINDOW])
        if not window:
            break
        # Every assignment of the window's units (a few each), filtered here: with the
        # member and the state in the statement, a plan could walk the member's history.
        held = {unit_id for unit_id, member, state in Assignment.objects.filter(
            unit_id__in=window).values_list("unit_id", "user_id", "state")
            if member == user.pk and state in _LIVE}
        free = [pk for pk in window if pk not in held]
        if free:
            # Locked by primary key alone, and checked here to be still in the queue (a
            # locked row is read as last committed): with the queue's predicate in the
            # statement as well, a generic plan scanned the whole queue's index.
            taken += [unit for unit in WorkUnit.objects.select_for_update(
                skip_locked=True, of=("self",)).filter(pk__in=free).order_by("id").only(
                "id", "job_id", "seq", "fuel_cap", "input", "state", "open_slots")[
                :wanted - len(taken)]
                if unit.state == UnitState.PENDING and unit.open_slots > 0]
        if len(window) < _WINDOW:
            break
        after = window[-1]
    return taken


def units_dispatch(*, user: User, device_id: str, max_units: int,
                   now: dt.datetime | None = None) -> list[Dispatched]:
    """Up to ``max_units`` units for this device, each now assigned to it."""
    contributor = contributor_for(user=user, device_id=device_id)
    now = now or timezone.now()
    _maybe_reclaim(now)
    wanted = max(1, min(int(max_units), MAX_BATCH))
    # The jobs this device may run, first (a handful of rows): the units are then taken
    # from the queue's index alone, in id order, without a join that could lead the
    # planner away from it.
    jobs = {job.pk: job for job in ComputeJob.objects.filter(
        state=JobState.RUNNING, deadline__gt=now, runtime=contributor.runtime,
        memory_bytes__lte=contributor.memory_bytes).order_by()
        .select_related("module").defer("module__wasm")}
    if not jobs:
        return []
    open_jobs = [pk for pk, job in jobs.items() if job.cancel_requested_at is None]
    # A cancelled job's units no device has started are not handed out.
    cancelled = [pk for pk, job in jobs.items() if job.cancel_requested_at is not None]
    queue = WorkUnit.objects.filter(_InQueue()).filter(
        Q(job_id__in=open_jobs) | Q(job_id__in=cancelled, issued_count__gt=0))
    with transaction.atomic():
        units = _take(queue, user, wanted)
        if not units:
            return []
        WorkUnit.objects.filter(pk__in=[u.pk for u in units]).update(
            open_slots=F("open_slots") - 1, issued_count=F("issued_count") + 1)
        assignments = Assignment.objects.bulk_create([
            Assignment(unit=unit, job_id=unit.job_id, device_id=contributor.device_id,
                       user=user, issued_at=now,
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

    Locks in the order every writer of the market uses: the units first (in id order;
    intake and dispatch lock them before anything else), then their assignments, then
    the devices' standing. Units another transaction holds are skipped (an intake is
    deciding them right now; a later run takes what is still overdue), so several
    processes may run this at once and none waits on another in a cycle.
    """
    now = now or timezone.now()
    candidates = sorted(set(
        Assignment.objects.filter(state=AssignmentState.ISSUED, deadline__lt=now)
        .order_by("deadline").values_list("unit_id", flat=True)[:limit]))
    if not candidates:
        return 0
    with transaction.atomic():
        units = list(WorkUnit.objects.select_for_update(skip_locked=True)
                     .filter(pk__in=candidates).order_by("id").values_list("pk", flat=True))
        overdue = list(
            Assignment.objects.select_for_update()
            .filter(unit_id__in=units, state=AssignmentState.ISSUED, deadline__lt=now)
            .order_by("id").values_list("pk", "unit_id", "device_id"))
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
