"""Paying a job's parties from its escrow: exact accruals, whole units as they accrue,
the fractions at the end (``pricing`` gives the arithmetic and why)."""

from __future__ import annotations

from django.db.models import F

from exchange.accounts.models import User
from exchange.compute_market.models import ComputeJob, ComputePayment, JobEarning
from exchange.compute_market.pricing import Accrued, final_top_ups
from exchange.ledger.models import AccountKind, EntryKind
from exchange.ledger.services import Leg, account_get_or_create, ledger_post, platform_account


def earnings_accrue(job: ComputeJob,
                    earned: dict[int | None, tuple[int, int, int]]) -> dict[int | None, int]:
    """Add exact earnings to each party's standing on the job (rows locked in a fixed
    order: the platform's first, then members by id); return the whole units now due."""
    parties = sorted(earned, key=lambda party: -1 if party is None else party)
    for party in parties:
        if party is None:
            JobEarning.objects.get_or_create(job=job, user=None)
        else:
            JobEarning.objects.get_or_create(job=job, user_id=party)
    rows = {row.user_id: row for row in JobEarning.objects.select_for_update()
            .filter(job=job, user_id__in=[p for p in parties if p is not None])}
    if None in earned:
        fee_row = JobEarning.objects.select_for_update().get(job=job, user__isnull=True)
        rows[None] = fee_row
    due: dict[int | None, int] = {}
    for party in parties:
        value, units, fuel = earned[party]
        row = rows[party]
        standing, whole = Accrued(row.paid_minor, row.remainder).add(value)
        JobEarning.objects.filter(pk=row.pk).update(
            paid_minor=standing.paid, remainder=standing.remainder,
            units=F("units") + units, fuel=F("fuel") + fuel)
        if whole:
            due[party] = whole
    return due


def payment_post(job: ComputeJob, due: dict[int | None, int], *, units: int,
                 final: bool) -> ComputePayment | None:
    """Move ``due`` (minor units per party; ``None`` the platform's fee) out of the job's
    escrow: one journal entry, recorded as a ``ComputePayment``."""
    total = sum(due.values())
    if not total:
        return None
    fee = due.get(None, 0)
    payment = ComputePayment.objects.create(job=job, units=units, final=final,
                                            contributors_minor=total - fee, fee_minor=fee)
    escrow = account_get_or_create(kind=AccountKind.ESCROW, owner=job.customer,
                                   currency=job.currency, reference=job.escrow_reference)
    members = {u.pk: u for u in User.objects.filter(pk__in=[p for p in due if p is not None])}
    legs = [Leg(escrow, -total)]
    legs += [Leg(account_get_or_create(kind=AccountKind.COMPUTE, owner=members[party],
                                       currency=job.currency), amount)
             for party, amount in sorted((p, a) for p, a in due.items() if p is not None) if amount]
    if fee:
        legs.append(Leg(platform_account(kind=AccountKind.FEES, currency=job.currency), fee))
    what = "fractions at the end" if final else f"{units} unit(s)"
    ledger_post(kind=EntryKind.COMPUTE_PAY, reference=str(payment.pk),
                memo=f"{job.name[:120]}: {what}", legs=legs, fresh_reference=True)
    return payment


def fractions_pay(job: ComputeJob) -> ComputePayment | None:
    """At the job's end: the whole units left in everyone's fractions, to the largest
    remainders (members by id first, then the platform, on a tie)."""
    rows = list(JobEarning.objects.select_for_update().filter(job=job).order_by("id"))
    parties = {row.user_id: Accrued(row.paid_minor, row.remainder) for row in rows}
    order = sorted(p for p in parties if p is not None) + ([None] if None in parties else [])
    top_ups = final_top_ups(parties, order)
    for row in rows:
        if top_ups.get(row.user_id):
            JobEarning.objects.filter(pk=row.pk).update(paid_minor=F("paid_minor") + 1)
    return payment_post(job, dict(top_ups), units=0, final=True)
