"""Reading jobs for their customer: progress, spending, units, results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    ComputePayment,
    Contributor,
    JobEarning,
    UnitState,
    Verdict,
    WorkUnit,
)
from exchange.core.errors import ServiceError


def job_get_for_customer(*, customer: User, job_id: uuid.UUID | str) -> ComputeJob:
    """The customer's own job; any other (or a malformed id) is a 404 that says no more."""
    try:
        key = uuid.UUID(str(job_id))
    except ValueError:
        key = None
    job = (ComputeJob.objects.select_related("module").defer("module__wasm")
           .filter(pk=key, customer=customer).first() if key else None)
    if job is None:
        raise ServiceError(_("No such job."), code="not_found", status_code=404)
    return job


def jobs_of(customer: User) -> QuerySet[ComputeJob]:
    return ComputeJob.objects.filter(customer=customer).select_related("module").defer(
        "module__wasm").order_by("-created_at")


@dataclass(frozen=True)
class Progress:
    units: dict[str, int]  # per UnitState
    agreed: int
    disagreed: int
    outstanding: int
    fuel_spent: int  # of validated units, on every agreeing device
    spent_minor: int  # paid out of escrow so far (contributors and fee)
    fee_minor: int

    @property
    def done(self) -> int:
        return self.units[UnitState.VALIDATED] + self.units[UnitState.FAILED]


def job_progress(job: ComputeJob) -> Progress:
    """Counted from the units and assignments (no counter kept on the job)."""
    counts = dict(WorkUnit.objects.filter(job=job).values_list("state").annotate(n=Count("id"))
                  .values_list("state", "n"))
    units = {state: counts.get(state, 0) for state in UnitState.values}
    results = Assignment.objects.filter(job=job).aggregate(
        agreed=Count("id", filter=Q(verdict=Verdict.AGREED)),
        disagreed=Count("id", filter=Q(verdict=Verdict.DISAGREED)),
        outstanding=Count("id", filter=Q(state=AssignmentState.ISSUED)))
    fuel = JobEarning.objects.filter(job=job, user__isnull=False).aggregate(f=Sum("fuel"))["f"]
    paid = ComputePayment.objects.filter(job=job).aggregate(
        c=Sum("contributors_minor"), f=Sum("fee_minor"))
    contributors, fee = paid["c"] or 0, paid["f"] or 0
    return Progress(units=units, agreed=results["agreed"], disagreed=results["disagreed"],
                    outstanding=results["outstanding"], fuel_spent=fuel or 0,
                    spent_minor=contributors + fee, fee_minor=fee)


def job_timeline(job: ComputeJob, *, buckets: int = 40) -> list[tuple[str, int]]:
    """Units validated over time (cumulative), for the progress chart: at most
    ``buckets`` points from the job's start to its last validation."""
    closed = [moment for moment in WorkUnit.objects.filter(job=job, state=UnitState.VALIDATED)
              .order_by("closed_at").values_list("closed_at", flat=True) if moment is not None]
    if not closed:
        return []
    start = job.created_at
    span = max((closed[-1] - start).total_seconds(), 1.0)
    points: list[tuple[str, int]] = []
    index = 0
    for step in range(1, buckets + 1):
        edge = span * step / buckets
        while index < len(closed) and (closed[index] - start).total_seconds() <= edge:
            index += 1
        points.append((f"{edge:.0f}s", index))
    return points


def units_of(job: ComputeJob) -> QuerySet[WorkUnit]:
    return WorkUnit.objects.filter(job=job).order_by("seq").defer("input").annotate(
        replicas=Count("assignments"))


def unit_output(job: ComputeJob, seq: int) -> bytes | None:
    """A validated unit's agreed output; None until it is validated."""
    unit = WorkUnit.objects.filter(job=job, seq=seq, state=UnitState.VALIDATED).only(
        "id", "output_sha256").first()
    if unit is None:
        return None
    data = unit.outputs.filter(sha256=unit.output_sha256).values_list("data", flat=True).first()
    return bytes(data) if data is not None else None


def contributors_of(user: User) -> QuerySet[Contributor]:
    return Contributor.objects.filter(user=user).select_related("device").order_by("-created_at")


def compute_earnings_of(user: User) -> QuerySet[JobEarning]:
    return JobEarning.objects.filter(user=user).select_related("job").order_by("-job__created_at")
