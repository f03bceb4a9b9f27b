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
from collections.abc import Iterable

from django.db import transaction
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


def _agreement(a: Assignment) -> tuple[str, int, str, int | None, int, str]:
    return (a.output_sha256, a.output_size or 0, a.stop, a.exit_status, a.fuel or 0, a.runtime)


def units_decide(*, unit_ids: Iterable[int], now: dt.datetime | None = None) -> dict[int, Outcome]:
    """Decide each pending unit again from its assignments; apply and pay."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("units_decide must run inside transaction.atomic()")
    now = now or timezone.now()
    units = list(WorkUnit.objects.select_for_update().filter(
        pk__in=sorted(set(unit_ids)), state=UnitState.PENDING).order_by("id")
        .only("id", "job_id", "quorum", "issued_count", "open_slots", "state", "seq"))
    if not units:
        return {}
    jobs = {j.pk: j for j in ComputeJob.objects.filter(pk__in={u.job_id for u in units})}
    by_unit: defaultdict[int, list[Assignment]] = defaultdict(list)
    for a in (Assignment.objects.filter(unit__in=[u.pk for u in units], state__in=_LIVE)
              .order_by("returned_at", "id")
              .only("id", "unit_id", "device_id", "user_id", "state", "output_sha256",
                    "output_size", "stop", "exit_status", "fuel", "runtime")):
        by_unit[a.unit_id].append(a)
    standing: defaultdict[str, Counter[str]] = defaultdict(Counter)
    verdicts: dict[int, str] = {}
    pay: defaultdict[uuid.UUID, list[tuple[WorkUnit, Decision, list[Assignment]]]] = (
        defaultdict(list))
    closed: list[tuple[WorkUnit, str]] = []
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
                WorkUnit.objects.filter(pk=unit.pk).update(open_slots=decision.open_slots)
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
            WorkUnit.objects.filter(pk=unit.pk).update(
                state=UnitState.FAILED, open_slots=0, closed_at=now,
                detail="the devices' results did not reach a quorum")
        if outstanding:
            Assignment.objects.filter(pk__in=[a.pk for a in outstanding]).update(
                state=AssignmentState.CANCELLED, verdict=Verdict.UNCHECKED)
    for verdict in {*verdicts.values()}:
        Assignment.objects.filter(pk__in=[pk for pk, v in verdicts.items() if v == verdict]
                                  ).update(verdict=verdict)
    for job_id, validated in pay.items():
        _validate_and_pay(jobs[job_id], validated, now=now)
    # Keep only the agreed output of each closed unit.
    for unit, agreed in closed:
        UnitOutput.objects.filter(unit_id=unit.pk).exclude(sha256=agreed).delete()
    standing_apply(standing)
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
        WorkUnit.objects.filter(pk=unit.pk).update(
            state=UnitState.VALIDATED, open_slots=0, closed_at=now, output_sha256=sha256,
            output_size=size, stop=stop, exit_status=exit_status, fuel=fuel)
    due = earnings_accrue(job, {party: (value, units, fuel)
                                for party, (value, units, fuel) in earned.items()})
    payment_post(job, due, units=len(validated), final=False)
