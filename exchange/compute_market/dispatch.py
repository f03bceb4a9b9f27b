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

import contextlib
import datetime as dt
import functools
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exchange.accounts.models import User
from exchange.compute_market.contributors import contributor_for, standing_apply
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    Contributor,
    JobState,
    UnitState,
    WorkUnit,
)
from exchange.compute_market.unit_decisions import as_uuid, postgres, run_sql, units_decide

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


class Given(NamedTuple):
    """A unit just assigned to a device, as the API answers it (no model instances)."""

    assignment: int
    deadline: dt.datetime
    unit: int
    seq: int
    fuel_cap: int
    input: bytes
    job: ComputeJob


# The queue's head, in id order. ``state = 'pending' AND open_slots > 0`` with its
# constants written in: that is exactly the predicate of the queue's partial index
# (``unit_open_queue``), and PostgreSQL matches a partial index only against constants,
# never against bound parameters (from its fifth use a statement is prepared, and a
# generic plan with the state and the count as parameters would walk the primary key
# past every closed unit there is).
_WINDOW_SQL = ("SELECT {unit.id} FROM {unit.table} WHERE {unit.state} = 'pending' "
               "AND {unit.open_slots} > 0 AND ({unit.job_id}{any:open:uuid} "
               "OR ({unit.job_id}{any:cancelled:uuid} AND {unit.issued_count} > 0)) "
               "AND {unit.id} > %s ORDER BY {unit.id} LIMIT %s")
assert UnitState.PENDING.value == "pending"  # the literal above
# Every assignment of the window's units (a few each), filtered in Python: with the
# member and the state in the statement, a plan could walk the member's history.
_HELD_SQL = ("SELECT {assignment.unit_id}, {assignment.user_id}, {assignment.state} "
             "FROM {assignment.table} WHERE {assignment.unit_id}{any:units:bigint}")
# Locked by primary key alone, and checked in Python to be still in the queue (a locked
# row is read as last committed): with the queue's predicate in the statement as well, a
# generic plan scanned the whole queue's index.
_LOCK_SQL = ("SELECT {unit.id}, {unit.job_id}, {unit.seq}, {unit.fuel_cap}, {unit.input}, "
             "{unit.state}, {unit.open_slots} FROM {unit.table} "
             "WHERE {unit.id}{any:free:bigint} ORDER BY {unit.id} LIMIT %s {skip_locked}")


def _take(open_jobs: list[Any], cancelled: list[Any], user: User,
          wanted: int) -> list[tuple[Any, ...]]:
    """Lock up to ``wanted`` units of the queue (units of ``open_jobs``, and those of
    ``cancelled`` jobs a device has started), in id order, skipping those another
    transaction holds and those the member already has a live assignment of; their rows
    (id, job, seq, fuel cap, input, state, open slots).

    The queue is read a window at a time: its head in id order (the partial index),
    then the member's assignments among them, then the rest locked with ``SKIP
    LOCKED``. Each statement is bounded by the window, whatever the planner's
    statistics say: as one query (an anti-join of the queue with the member's
    assignments) a freshly submitted job, not yet analysed, was planned as a nested
    loop over every pending unit and every assignment of the member's: seconds a call.
    """
    taken: list[tuple[Any, ...]] = []
    after = 0
    while len(taken) < wanted:
        with _no_bitmap_scans():
            window = [pk for (pk,) in run_sql(_WINDOW_SQL, [after, _WINDOW], lists={
                "open": open_jobs, "cancelled": cancelled})]
        if not window:
            break
        held = {unit_id for unit_id, member, state in run_sql(_HELD_SQL,
                                                              lists={"units": window})
                if member == user.pk and state in _LIVE}
        free = [pk for pk in window if pk not in held]
        if free:
            taken += [row for row in run_sql(_LOCK_SQL, [wanted - len(taken)],
                                             lists={"free": free})
                      if row[5] == UnitState.PENDING and row[6] > 0]
        if len(window) < _WINDOW:
            break
        after = window[-1]
    return taken


@contextlib.contextmanager
def _no_bitmap_scans() -> Iterator[None]:
    """On PostgreSQL, no bitmap scans for the queue's window (``SET LOCAL``, inside the
    caller's atomic block; the default again right after: for the other statements,
    lookups of a thousand ids, a bitmap scan is the good plan: without it, the member's
    assignments among the window's units were read by a sequential scan of them all).

    A queue filled by a job just submitted has no statistics yet: the planner takes its
    partial index for a handful of entries and reads the window with a bitmap scan of
    every entry past the last window, then sorts them: 7 to 14 ms a call with 20,000
    units queued, against 0.7 ms for the index scan in id order that stops at the
    window's end, which is what it picks once bitmaps are off."""
    if not postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    yield
    # (After an error the caller's atomic block rolls back, and the setting with it.)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_bitmapscan TO DEFAULT")


def units_dispatch(*, user: User, device_id: str, max_units: int,
                   now: dt.datetime | None = None) -> list[Dispatched]:
    """Up to ``max_units`` units for this device, each now assigned to it."""
    now = now or timezone.now()
    given = units_give(user=user, device_id=device_id, max_units=max_units, now=now)
    return [Dispatched(
        assignment=Assignment(id=g.assignment, unit_id=g.unit, job_id=g.job.pk,
                              device_id=device_id, user=user, issued_at=now,
                              deadline=g.deadline),
        unit=WorkUnit(id=g.unit, job_id=g.job.pk, seq=g.seq, fuel_cap=g.fuel_cap,
                      input=g.input),
        job=g.job) for g in given]


def units_give(*, user: User, device_id: str, max_units: int,
               now: dt.datetime | None = None) -> list[Given]:
    """``units_dispatch``, answered as rows (what the API sends back): the statements
    written by hand (``unit_decisions`` says why), one to write a batch on PostgreSQL."""
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
    job_pk = ComputeJob._meta.pk
    assert job_pk is not None

    def keys(pks: list[uuid.UUID]) -> list[Any]:
        return [job_pk.get_db_prep_value(pk, connection) for pk in pks]

    open_jobs = [pk for pk, job in jobs.items() if job.cancel_requested_at is None]
    # A cancelled job's units no device has started are not handed out.
    cancelled = [pk for pk, job in jobs.items() if job.cancel_requested_at is not None]
    with transaction.atomic():
        units = _take(keys(open_jobs), keys(cancelled), user, wanted)
        if not units:
            return []
        job_of = [as_uuid(row[1]) for row in units]
        deadlines = [now + dt.timedelta(seconds=jobs[job_id].unit_seconds)
                     for job_id in job_of]
        ids = _issue(contributor, user, now, unit_ids=[row[0] for row in units],
                     job_ids=job_of, deadlines=deadlines)
        contributor.last_seen_at = now
    return [Given(ids[row[0]], deadline, row[0], row[2], row[3], bytes(row[4]), jobs[job_id])
            for row, job_id, deadline in zip(units, job_of, deadlines, strict=True)]


@functools.cache
def _issue_sql() -> tuple[str, tuple[str, ...]]:
    """The statement that writes a batch on PostgreSQL (the units' counters, the
    assignments, RETURNING their ids, and the device's ``last_seen_at``: data-modifying
    CTEs run in full), and the fields given as constants, in their order.

    The columns come from the model: the per-row values (unit, job, deadline) as arrays,
    every other field as the model's own default would save it."""
    qn = connection.ops.quote_name
    per_row = {"unit": "v.unit_id", "job": "v.job_id", "deadline": "v.deadline"}
    fields = [f for f in Assignment._meta.concrete_fields if not f.primary_key]
    constants = tuple(f.attname for f in fields if f.name not in per_row)
    values = ", ".join(per_row.get(f.name) or f"%s::{f.cast_db_type(connection)}"
                       for f in fields)
    columns = ", ".join(qn(str(f.column)) for f in fields)
    # Names from the model's metadata (filled in by ``run_sql``); every value a parameter.
    sql = ("WITH counted AS (UPDATE {unit.table} SET {unit.open_slots} = {unit.open_slots} - 1, "  # noqa: S608
           "{unit.issued_count} = {unit.issued_count} + 1 WHERE {unit.id} = ANY(%b::bigint[])), "
           "seen AS (UPDATE {contributor.table} SET {contributor.last_seen_at} = %s "
           "WHERE {contributor.device_id} = %s) "
           f"INSERT INTO {{assignment.table}} ({columns}) SELECT {values} "
           "FROM UNNEST(%b::bigint[], %b::uuid[], %b::timestamptz[]) "
           "AS v(unit_id, job_id, deadline) RETURNING {assignment.id}, {assignment.unit_id}")
    return sql, constants


def _issue(contributor: Contributor, user: User, now: dt.datetime, *, unit_ids: list[int],
           job_ids: list[uuid.UUID], deadlines: list[dt.datetime]) -> dict[int, int]:
    """Assign the locked units to the device: their counters moved, an assignment each,
    the device seen now. The assignments' ids by unit."""
    if postgres():
        sql, constants = _issue_sql()
        proto = Assignment(device_id=contributor.device_id, user=user, issued_at=now)
        fields = {f.attname: f for f in Assignment._meta.concrete_fields}
        # Parameters in the text's order: the counters', the device's, the constants (in
        # column order), the arrays.
        params = [unit_ids, now, contributor.device_id]
        params += [fields[name].get_db_prep_save(getattr(proto, name), connection)
                   for name in constants]
        params += [unit_ids, job_ids, deadlines]
        return {unit_id: pk for pk, unit_id in run_sql(sql, params)}
    WorkUnit.objects.filter(pk__in=unit_ids).update(
        open_slots=F("open_slots") - 1, issued_count=F("issued_count") + 1)
    made = Assignment.objects.bulk_create([
        Assignment(unit_id=unit_id, job_id=job_id, device_id=contributor.device_id,
                   user=user, issued_at=now, deadline=deadline)
        for unit_id, job_id, deadline in zip(unit_ids, job_ids, deadlines, strict=True)])
    type(contributor).objects.filter(pk=contributor.pk).update(last_seen_at=now)
    return {a.unit_id: a.pk for a in made}


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
