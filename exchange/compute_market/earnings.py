"""Paying a job's parties from its escrow: exact accruals, whole units as they accrue,
the fractions at the end (``pricing`` gives the arithmetic and why)."""

from __future__ import annotations

from django.db.models import F, Q

from exchange.accounts.models import User
from exchange.compute_market.models import ComputeJob, ComputePayment, JobEarning
from exchange.compute_market.pricing import Accrued, final_top_ups
from exchange.ledger.models import Account, AccountKind, EntryKind
from exchange.ledger.services import Leg, account_get_or_create, ledger_post, platform_account


def _locked_rows(job: ComputeJob, parties: list[int | None]) -> dict[int | None, JobEarning]:
    """The parties' rows on the job, locked in one statement: the platform's first, then
    members by id."""
    members = [p for p in parties if p is not None]
    wanted = Q(user_id__in=members)
    if None in parties:
        wanted |= Q(user__isnull=True)
    return {row.user_id: row for row in JobEarning.objects.select_for_update()
            .filter(wanted, job=job).order_by(F("user_id").asc(nulls_first=True))}


def earnings_accrue(job: ComputeJob,
                    earned: dict[int | None, tuple[int, int, int]]) -> dict[int | None, int]:
    """Add exact earnings to each party's standing on the job (rows locked in a fixed
    order: the platform's first, then members by id); return the whole units now due."""
    parties = sorted(earned, key=lambda party: -1 if party is None else party)
    rows = _locked_rows(job, parties)
    missing = [party for party in parties if party not in rows]
    if missing:  # a party's first earning on the job: made in the same order, then locked
        JobEarning.objects.bulk_create([JobEarning(job=job, user_id=party) for party in missing],
                                       ignore_conflicts=True)
        rows = _locked_rows(job, parties)
    due: dict[int | None, int] = {}
    for party in parties:
        value, units, fuel = earned[party]
        row = rows[party]
        standing, whole = Accrued(row.paid_minor, row.remainder).add(value)
        row.paid_minor, row.remainder = standing.paid, standing.remainder
        row.units += units
        row.fuel += fuel
        if whole:
            due[party] = whole
    # One statement for every party (their rows are locked above).
    from exchange.compute_market.unit_decisions import rows_update  # (it imports this)

    rows_update(JobEarning, [rows[party] for party in parties],
                ["paid_minor", "remainder", "units", "fuel"])
    return due


def _accounts(job: ComputeJob, members: list[int], fee: bool) -> dict[tuple[str, int | None],
                                                                       Account]:
    """The job's escrow, the members' compute accounts and (with ``fee``) the platform's
    fees, read in one query; any missing one is made as ``account_get_or_create`` does."""
    common = {"currency": job.currency}
    wanted = Q(kind=AccountKind.ESCROW, owner_id=job.customer_id,
               reference=job.escrow_reference, **common)
    if members:
        wanted |= Q(kind=AccountKind.COMPUTE, owner_id__in=members, reference="", **common)
    if fee:
        wanted |= Q(kind=AccountKind.FEES, owner__isnull=True, reference="", **common)
    found = {(a.kind, a.owner_id): a for a in Account.objects.filter(wanted)}
    key = (AccountKind.ESCROW.value, job.customer_id)
    if key not in found:
        found[key] = account_get_or_create(kind=AccountKind.ESCROW, owner=job.customer,
                                           currency=job.currency,
                                           reference=job.escrow_reference)
    absent = [m for m in members if (AccountKind.COMPUTE.value, m) not in found]
    for user in User.objects.filter(pk__in=absent).order_by("pk"):
        found[(AccountKind.COMPUTE.value, user.pk)] = account_get_or_create(
            kind=AccountKind.COMPUTE, owner=user, currency=job.currency)
    if fee and (AccountKind.FEES.value, None) not in found:
        found[(AccountKind.FEES.value, None)] = platform_account(kind=AccountKind.FEES,
                                                                 currency=job.currency)
    return found


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
    paid = sorted((p, a) for p, a in due.items() if p is not None and a)
    accounts = _accounts(job, [party for party, _ in paid], bool(fee))
    legs = [Leg(accounts[(AccountKind.ESCROW.value, job.customer_id)], -total)]
    legs += [Leg(accounts[(AccountKind.COMPUTE.value, party)], amount) for party, amount in paid]
    if fee:
        legs.append(Leg(accounts[(AccountKind.FEES.value, None)], fee))
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
