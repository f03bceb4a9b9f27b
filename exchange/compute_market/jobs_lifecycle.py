"""A job's end: finished when no unit is left pending, cancelled by its customer, or
expired at its deadline; each returns what is left of the budget to the wallet.

What is left is exactly the escrow account's balance: the budget less every unit's
charge, since charges are the only other movement out of it. The return is one entry
per job (its reference is the job id), so a job can never be refunded twice.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.compute_market.earnings import fractions_pay
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    JobState,
    UnitState,
    Verdict,
    WorkUnit,
)
from exchange.core.errors import ServiceError
from exchange.ledger.models import Account, AccountKind, EntryKind
from exchange.ledger.services import Leg, account_get_or_create, ledger_post


def _return_budget(job: ComputeJob) -> int:
    escrow = Account.objects.get(kind=AccountKind.ESCROW, owner_id=job.customer_id,
                                 currency=job.currency, reference=job.escrow_reference)
    left = escrow.balance
    if left:
        wallet = account_get_or_create(kind=AccountKind.WALLET, owner=job.customer,
                                       currency=job.currency)
        ledger_post(kind=EntryKind.COMPUTE_RETURN, reference=str(job.pk),
                    memo=f"{job.name[:120]}: unspent budget returned",
                    legs=[Leg(escrow, -left), Leg(wallet, left)])
    return left


def _close(job: ComputeJob, state: str, now: dt.datetime) -> None:
    fractions_pay(job)
    refunded = _return_budget(job)
    ComputeJob.objects.filter(pk=job.pk).update(state=state, finished_at=now,
                                                refunded_minor=refunded)
    job.state, job.finished_at, job.refunded_minor = state, now, refunded
    audit_record(actor=None, action=f"compute.job_{state}", target=job,
                 data={"refunded_minor": refunded})


def job_finish_if_done(*, job_id: uuid.UUID, now: dt.datetime | None = None) -> bool:
    """Finish a running job none of whose units is pending; True if this call did."""
    now = now or timezone.now()
    with transaction.atomic():
        job = (ComputeJob.objects.select_for_update(of=("self",)).select_related("customer")
               .filter(pk=job_id, state=JobState.RUNNING).first())
        if job is None or WorkUnit.objects.filter(job=job, state=UnitState.PENDING).exists():
            return False
        _close(job, JobState.CANCELLED if job.cancel_requested_at else JobState.COMPLETED, now)
    return True


def job_cancel(*, customer: User, job_id: uuid.UUID | str,
               now: dt.datetime | None = None) -> ComputeJob:
    """Stop a job: units no device has started are cancelled (their budget returns when
    the job ends); units already running finish and are paid, so that no contributor
    loses work it was given. Cancelling twice is the same as once."""
    now = now or timezone.now()
    with transaction.atomic():
        job = (ComputeJob.objects.select_for_update(of=("self",)).select_related("customer")
               .filter(pk=job_id, customer=customer).first())
        if job is None:
            raise ServiceError(_("No such job."), code="not_found", status_code=404)
        if job.state != JobState.RUNNING or job.cancel_requested_at is not None:
            return job
        job.cancel_requested_at = now
        ComputeJob.objects.filter(pk=job.pk).update(cancel_requested_at=now)
        WorkUnit.objects.filter(job=job, state=UnitState.PENDING, issued_count=0).update(
            state=UnitState.CANCELLED, open_slots=0, closed_at=now,
            detail="cancelled before any device started it")
        audit_record(actor=customer, action="compute.job_cancel", target=job)
    job_finish_if_done(job_id=job.pk, now=now)
    job.refresh_from_db()
    return job


def jobs_expire_due(*, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Close running jobs past their deadline: what is unfinished is cancelled and the
    rest of the budget returned. Results still out are refused when they come back."""
    now = now or timezone.now()
    due = list(ComputeJob.objects.filter(state=JobState.RUNNING, deadline__lt=now)
               .values_list("pk", flat=True)[:limit])
    expired = 0
    for job_id in due:
        with transaction.atomic():
            job = (ComputeJob.objects.select_for_update(of=("self",), skip_locked=True)
                   .select_related("customer").filter(pk=job_id, state=JobState.RUNNING).first())
            if job is None:
                continue
            pending = WorkUnit.objects.select_for_update().filter(job=job,
                                                                  state=UnitState.PENDING)
            ids = list(pending.order_by("id").values_list("pk", flat=True))
            WorkUnit.objects.filter(pk__in=ids).update(
                state=UnitState.CANCELLED, open_slots=0, closed_at=now,
                detail="the job's deadline passed")
            Assignment.objects.filter(unit__in=ids, state=AssignmentState.ISSUED).update(
                state=AssignmentState.CANCELLED, verdict=Verdict.UNCHECKED)
            _close(job, JobState.EXPIRED, now)
            expired += 1
    return expired


def jobs_finish_done(*, limit: int = 100) -> int:
    """Finish running jobs with nothing pending (a backstop for a finish that did not run
    after its commit: a process killed in between)."""
    running = ComputeJob.objects.filter(state=JobState.RUNNING).exclude(
        units__state=UnitState.PENDING).values_list("pk", flat=True)[:limit]
    return sum(job_finish_if_done(job_id=job_id) for job_id in list(running))
