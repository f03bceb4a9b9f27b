"""Applying the quorum's decision to units, and paying for the validated ones.

Runs inside the caller's transaction (an intake of results, a reclaim of overdue
assignments), with the units locked in id order. A validated unit is paid at once:
one ledger entry per job and call moves the charges out of the job's escrow, to each
agreeing device's member (compute credit) and to the platform's fees. A job none of
whose units is left pending is finished after the commit (see ``jobs_lifecycle``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from exchange.compute_market.contributors import standing_apply
from exchange.compute_market.earnings import earnings_accrue, payment_post
from exchange.compute_market.jobs_lifecycle import job_finish_if_done
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    UnitOutput,
    UnitState,
    Verdict,
    WorkUnit,
)
from exchange.compute_market.pricing import device_accrual, fee_accrual
from exchange.compute_market.quorum import Decision, Outcome, Returned, decide

_LIVE = (AssignmentState.ISSUED, AssignmentState.RETURNED)


def rows_update(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of each of ``objs`` (rows the caller has locked) back, in one
    statement on PostgreSQL.

    Django's ``bulk_update`` builds a ``CASE`` of one ``WHEN`` per row for every field,
    and for a batch of 128 results its Python took far longer than the database did.
    Here: ``UPDATE … FROM UNNEST(one array per column)``.
    Elsewhere (SQLite: one writer, no round trips) one ``UPDATE`` per row.
    """
    if not objs:
        return
    columns = [cast("Field[Any, Any]", model._meta.get_field(name)) for name in fields]
    if connection.vendor != "postgresql":
        for obj in objs:
            model._base_manager.filter(pk=obj.pk).update(
                **{field.name: getattr(obj, field.attname) for field in columns})
        return
    qn = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    table = qn(model._meta.db_table)
    # One array per column: the statement's text is the same whatever the batch's size
    # (parsed and prepared once), and its parameters are a dozen, not thousands.
    arrays = ", ".join(f"%s::{field.cast_db_type(connection)}[]" for field in [pk, *columns])
    names = ", ".join(qn(str(field.column)) for field in [pk, *columns])
    sets = ", ".join(f"{qn(str(field.column))} = v.{qn(str(field.column))}" for field in columns)
    sql = (f"UPDATE {table} SET {sets} FROM UNNEST({arrays}) AS v({names}) "  # noqa: S608
           f"WHERE {table}.{qn(str(pk.column))} = v.{qn(str(pk.column))}")
    # Every value is a parameter; the names come from the model's metadata.
    params = [[obj.pk for obj in objs]]
    params += [[field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs]
               for field in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _agreement(a: Assignment) -> tuple[str, int, str, int | None, int, str]:
    return (a.output_sha256, a.output_size or 0, a.stop, a.exit_status, a.fuel or 0, a.runtime)


def units_decide(*, unit_ids: Iterable[int], now: dt.datetime | None = None) -> dict[int, Outcome]:
    """Decide each pending unit again from its assignments; apply and pay."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("units_decide must run inside transaction.atomic()")
    now = now or timezone.now()
    # By primary key alone, the state checked here: with the state in the statement too,
    # a prepared statement's generic plan (a table not analysed yet) scanned every
    # pending unit through the (job, state) index instead.
    units = [unit for unit in WorkUnit.objects.select_for_update().filter(
        pk__in=sorted(set(unit_ids))).order_by("id")
        .only("id", "job_id", "quorum", "issued_count", "open_slots", "state", "seq")
        if unit.state == UnitState.PENDING]
    if not units:
        return {}
    jobs = {j.pk: j for j in ComputeJob.objects.filter(pk__in={u.job_id for u in units})}
    by_unit: defaultdict[int, list[Assignment]] = defaultdict(list)
    for a in (Assignment.objects.filter(unit__in=[u.pk for u in units])
              .order_by("returned_at", "id")
              .only("id", "unit_id", "device_id", "user_id", "state", "output_sha256",
                    "output_size", "stop", "exit_status", "fuel", "runtime")):
        if a.state in _LIVE:  # (not in the statement: as above, for the plan's sake)
            by_unit[a.unit_id].append(a)
    standing: defaultdict[str, Counter[str]] = defaultdict(Counter)
    verdicts: dict[int, str] = {}
    pay: defaultdict[uuid.UUID, list[tuple[WorkUnit, Decision, list[Assignment]]]] = (
        defaultdict(list))
    closed: list[tuple[WorkUnit, str]] = []
    reopened: defaultdict[int, list[int]] = defaultdict(list)  # open slots -> units
    failed: list[int] = []
    cancelled: list[int] = []  # outstanding assignments of closed units
    outcomes: dict[int, Outcome] = {}
    for unit in units:
        job = jobs[unit.job_id]
        live = by_unit[unit.pk]
        returned = [a for a in live if a.state == AssignmentState.RETURNED]
        outstanding = [a for a in live if a.state == AssignmentState.ISSUED]
        decision = decide(quorum=unit.quorum,
                          returned=[Returned(a.pk, _agreement(a)) for a in returned],
                          outstanding=len(outstanding), issued=unit.issued_count,
                          max_results=job.max_results)
        outcomes[unit.pk] = decision.outcome
        if decision.outcome is Outcome.WAIT:
            if unit.open_slots != decision.open_slots:
                reopened[decision.open_slots].append(unit.pk)
            continue
        closed.append((unit, decision.agreed[0] if decision.agreed else ""))
        device_of = {a.pk: a.device_id for a in live}
        for pk in decision.no_vote:
            verdicts[pk] = Verdict.NO_VOTE
            standing[device_of[pk]]["no_vote"] += 1
        if decision.outcome is Outcome.VALIDATED:
            for pk in decision.agreeing:
                verdicts[pk] = Verdict.AGREED
                standing[device_of[pk]]["agreed"] += 1
            for pk in decision.disagreeing:
                verdicts[pk] = Verdict.DISAGREED
                standing[device_of[pk]]["disagreed"] += 1
            pay[job.pk].append((unit, decision, live))
        else:
            for a in returned:
                verdicts.setdefault(a.pk, Verdict.UNCHECKED)
            failed.append(unit.pk)
        cancelled += [a.pk for a in outstanding]
    # One statement per kind of change, not one per unit.
    for slots, pks in sorted(reopened.items()):
        WorkUnit.objects.filter(pk__in=pks).update(open_slots=slots)
    if failed:
        WorkUnit.objects.filter(pk__in=failed).update(
            state=UnitState.FAILED, open_slots=0, closed_at=now,
            detail="the devices' results did not reach a quorum")
    if cancelled:
        Assignment.objects.filter(pk__in=cancelled).update(
            state=AssignmentState.CANCELLED, verdict=Verdict.UNCHECKED)
    for verdict in sorted({*verdicts.values()}):
        Assignment.objects.filter(pk__in=[pk for pk, v in verdicts.items() if v == verdict]
                                  ).update(verdict=verdict)
    # Keep only the agreed output of each closed unit (usually the only one there is).
    if closed:
        agreed_of = {unit.pk: agreed for unit, agreed in closed}
        other = [pk for pk, unit_id, sha256 in UnitOutput.objects.filter(
            unit_id__in=list(agreed_of)).values_list("pk", "unit_id", "sha256")
            if sha256 != agreed_of[unit_id]]
        if other:
            UnitOutput.objects.filter(pk__in=other).delete()
    standing_apply(standing)
    # The payments last: the job's escrow and its fee row are what concurrent intakes of
    # one job wait for, so they are locked as late, and held as briefly, as can be.
    for job_id, validated in sorted(pay.items()):
        _validate_and_pay(jobs[job_id], validated, now=now)
    for job_id in {unit.job_id for unit, _ in closed}:
        transaction.on_commit(functools.partial(job_finish_if_done, job_id=job_id))
    return outcomes


def _zeros() -> list[int]:
    return [0, 0, 0]


def _validate_and_pay(job: ComputeJob,
                      validated: list[tuple[WorkUnit, Decision, list[Assignment]]],
                      *, now: dt.datetime) -> None:
    """Close the validated units with their agreed result, accrue each agreeing member's
    and the platform's exact earnings, and pay the whole minor units accrued: one entry."""
    # per party (a member, or None for the fee): exact value, results, fuel
    earned: defaultdict[int | None, list[int]] = defaultdict(_zeros)
    closing = []
    for unit, decision, live in validated:
        assert decision.agreed is not None
        sha256, size, stop, exit_status, fuel, _runtime = decision.agreed
        agreeing = [a for a in live if a.pk in decision.agreeing]
        for assignment in agreeing:
            part = earned[assignment.user_id]
            part[0] += device_accrual(fuel=fuel, price_per_tfuel=job.price_per_tfuel_minor)
            part[1] += 1
            part[2] += fuel
        fee = earned[None]
        fee[0] += fee_accrual(fuel=fuel, devices=len(agreeing),
                              price_per_tfuel=job.price_per_tfuel_minor, fee_bps=job.fee_bps)
        unit.state, unit.open_slots, unit.closed_at = UnitState.VALIDATED, 0, now
        unit.output_sha256, unit.output_size, unit.stop = sha256, size, stop
        unit.exit_status, unit.fuel = exit_status, fuel
        closing.append(unit)
    # One statement for the batch's units (locked by the caller).
    rows_update(WorkUnit, closing, ["state", "open_slots", "closed_at", "output_sha256",
                                    "output_size", "stop", "exit_status", "fuel"])
    due = earnings_accrue(job, {party: (value, units, fuel)
                                for party, (value, units, fuel) in earned.items()})
    payment_post(job, due, units=len(validated), final=False)
