"""A job from submission to its end, through the services: dispatch, quorum, payment,
refund; the expected amounts are worked out by hand in each test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from exchange.accounts.models import User
from exchange.compute_market.dispatch import assignments_reclaim_overdue
from exchange.compute_market.jobs_lifecycle import job_cancel, jobs_expire_due
from exchange.compute_market.models import (
    Assignment,
    ComputeJob,
    Contributor,
    JobState,
    UnitState,
    Verdict,
    WorkUnit,
)
from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
from exchange.core.errors import ServiceError
from exchange.ledger.models import Account, AccountKind, Posting
from exchange.operations.books import books_check
from tests.exchange.compute_market.support import (
    EMPTY_COMMAND,
    Member,
    enroll,
    send,
    signed,
    take,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def members(bob: User, carol: User, rita: User, device_of: Callable[..., Any]) -> list[Member]:
    found = []
    for user in (bob, carol, rita):
        keys, device = device_of(user)
        member = Member(user, keys, device)
        enroll(member)
        found.append(member)
    return found


def _balance(user: User, kind: str, currency: str = "EUR") -> int:
    account = Account.objects.filter(owner=user, kind=kind, currency=currency,
                                     reference="").first()
    return account.balance if account else 0


def _submit(customer: User, units: int, *, fuel: int = 2 * 10**9, price: int = 150_000,
            replication: int = 2) -> ComputeJob:
    module = module_store(user=customer, wasm=EMPTY_COMMAND)
    return job_submit(customer=customer, spec=JobSpec(
        name="test", module_sha256=module.sha256, currency="EUR", price_per_tfuel_minor=price,
        replication=replication, units=[UnitSpec(input=b"%d" % i, fuel=fuel)
                                        for i in range(units)]))


def test_budget_is_held_then_units_paid_and_the_rest_returned(
        rob: User, members: list[Member], fund: Callable[..., None]) -> None:
    fund(rob, 10_000)
    job = _submit(rob, 2)
    # 2 units x 2 x 10^9 fuel x 2 devices x 150,000 per 10^12 = 1,200; fee 10% = 120.
    assert job.budget_minor == 1_320
    assert _balance(rob, AccountKind.WALLET) == 10_000 - 1_320
    bob, carol, _ = members
    for member in (bob, carol):
        taken = take(member)
        assert [d.unit.seq for d in taken] == [0, 1]
        # Unit 0 burns 1,234,567,000 fuel, unit 1 10^9.
        outcomes = send(member, [signed(member, taken[0], b"zero", fuel=1_234_567_000),
                                 signed(member, taken[1], b"one", fuel=10**9)])
        assert {o.status for o in outcomes} == {"accepted"}
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    # Exact, per device: 1,234,567,000 x 150,000 / 10^12 = 185.18505, plus 150 for
    # unit 1: 335.18505 each; the fee 10% of both devices' 670.3701 = 67.03701. The
    # total 737.40711 is charged 737: floors 335 + 335 + 67 = 737, nothing left over.
    assert _balance(bob.user, AccountKind.COMPUTE) == 335
    assert _balance(carol.user, AccountKind.COMPUTE) == 335
    assert job.refunded_minor == 1_320 - 737
    assert _balance(rob, AccountKind.WALLET) == 10_000 - 737
    fees = Account.objects.get(kind=AccountKind.FEES, currency="EUR")
    assert Posting.objects.filter(account=fees).aggregate(s=Sum("amount"))["s"] == 67
    assert Posting.objects.aggregate(s=Sum("amount"))["s"] == 0
    assert Contributor.objects.get(device=bob.device).agreed == 2
    assert books_check() == []


def test_a_disagreement_goes_to_a_third_member_and_the_odd_one_is_not_paid(
        rob: User, members: list[Member], fund: Callable[..., None]) -> None:
    fund(rob, 10_000)
    job = _submit(rob, 1, fuel=10**9, price=100_000)
    bob, carol, rita = members
    send(bob, [signed(bob, take(bob)[0], b"right", fuel=5 * 10**8)])
    send(carol, [signed(carol, take(carol)[0], b"wrong", fuel=5 * 10**8)])
    assert WorkUnit.objects.get(job=job).state == UnitState.PENDING
    third = take(rita)
    assert len(third) == 1
    send(rita, [signed(rita, third[0], b"right", fuel=5 * 10**8)])
    unit = WorkUnit.objects.get(job=job)
    assert unit.state == UnitState.VALIDATED
    verdicts = dict(Assignment.objects.filter(unit=unit).values_list("user__username", "verdict"))
    assert verdicts == {"bob": Verdict.AGREED, "carol": Verdict.DISAGREED, "rita": Verdict.AGREED}
    # 5 x 10^8 x 100,000 / 10^12 = 50 each, fee 10.
    assert _balance(bob.user, AccountKind.COMPUTE) == 50
    assert _balance(rita.user, AccountKind.COMPUTE) == 50
    assert _balance(carol.user, AccountKind.COMPUTE) == 0
    standing = Contributor.objects.get(device=carol.device)
    assert (standing.disagreed, standing.consecutive) == (1, 0)
    assert books_check() == []


def test_no_member_gets_the_same_unit_twice(rob: User, members: list[Member],
                                            fund: Callable[..., None],
                                            device_of: Callable[..., Any]) -> None:
    fund(rob, 10_000)
    _submit(rob, 3)
    bob = members[0]
    keys, device = device_of(bob.user, "desktop")
    second = Member(bob.user, keys, device)
    enroll(second)
    assert len(take(bob)) == 3
    assert take(second) == []


def test_cancel_returns_the_unstarted_units_budget(rob: User, members: list[Member],
                                                   fund: Callable[..., None]) -> None:
    fund(rob, 10_000)
    job = _submit(rob, 4, fuel=10**9, price=100_000)  # budget 4 x 2 x 100 x 1.1 = 880
    bob, carol, _ = members
    started = take(bob, 1)
    job = job_cancel(customer=rob, job_id=job.pk)
    assert job.state == JobState.RUNNING  # unit 0 is still running on bob's device
    assert WorkUnit.objects.filter(job=job, state=UnitState.CANCELLED).count() == 3
    assert [d.unit.seq for d in take(carol)] == [0]
    send(bob, [signed(bob, started[0], b"x", fuel=10**9)])
    send(carol, [signed(carol, Assignment_of(carol, job), b"x", fuel=10**9)])
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.refunded_minor == 880 - 220
    assert _balance(rob, AccountKind.WALLET) == 10_000 - 220
    assert books_check() == []


def Assignment_of(member: Member, job: ComputeJob) -> Any:  # noqa: N802
    from exchange.compute_market.dispatch import Dispatched

    a = Assignment.objects.select_related("unit", "job").get(job=job, device=member.device)
    return Dispatched(assignment=a, unit=a.unit, job=a.job)


def test_fractions_are_paid_at_the_end_by_the_largest_remainders(
        rob: User, members: list[Member], fund: Callable[..., None]) -> None:
    fund(rob, 10_000)
    # 3 units of at most 10^9 fuel at 1,000 per 10^12: budget 3 x 10^9 x 2 x 1,000 / 10^12
    # x 1.1 = 6.6 -> 7.
    job = _submit(rob, 3, fuel=10**9, price=1_000)
    assert job.budget_minor == 7
    bob, carol, rita = members
    # Bob and Carol agree on units 0 and 1 (7 x 10^8 fuel each: 0.7 a device a unit);
    # unit 2 (4 x 10^8: 0.4) goes to Bob and Rita.
    fuel = {0: 7 * 10**8, 1: 7 * 10**8, 2: 4 * 10**8}
    for member, seqs in ((bob, (0, 1, 2)), (carol, (0, 1)), (rita, (2,))):
        given = take(member)
        send(member, [signed(member, d, b"%d" % d.unit.seq, fuel=fuel[d.unit.seq])
                      for d in given if d.unit.seq in seqs])
        # What else it was given it never returns: overdue, the unit goes to another.
        Assignment.objects.filter(device=member.device, state="issued").update(
            deadline=timezone.now() - dt.timedelta(seconds=1))
        assignments_reclaim_overdue()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    # Exact: Bob 0.7 + 0.7 + 0.4 = 1.8, Carol 1.4, Rita 0.4, fee 10% of 3.6 = 0.36;
    # total 3.96, charged 3. Floors 1 + 1 + 0 + 0 = 2 (paid as they accrued: Bob's
    # first unit at 1.4, Carol's at 1.4); one unit left, to the largest fraction: Bob's
    # 0.8 (Carol 0.4, Rita 0.4, fee 0.36).
    assert _balance(bob.user, AccountKind.COMPUTE) == 2
    assert _balance(carol.user, AccountKind.COMPUTE) == 1
    assert _balance(rita.user, AccountKind.COMPUTE) == 0
    assert job.refunded_minor == 7 - 3
    assert books_check() == []


def test_a_unit_without_a_quorum_fails_unpaid_and_the_job_still_ends(
        rob: User, members: list[Member], fund: Callable[..., None],
        device_of: Callable[..., Any]) -> None:
    fund(rob, 10_000)
    job = _submit(rob, 1, fuel=10**9, price=100_000)  # at most 2 x 2 + 2 = 6 results
    extra = []
    for index in range(3):
        user = User.objects.create_user(username=f"extra{index}", password="x")
        keys, device = device_of(user)
        extra.append(Member(user, keys, device))
        enroll(extra[-1])
    for index, member in enumerate([*members, *extra]):
        given = take(member)
        assert len(given) == 1, member.user.username
        send(member, [signed(member, given[0], b"answer %d" % index, fuel=10**8)])
    unit = WorkUnit.objects.get(job=job)
    assert unit.state == UnitState.FAILED
    job.refresh_from_db()
    assert (job.state, job.refunded_minor) == (JobState.COMPLETED, job.budget_minor)
    assert not Account.objects.filter(kind=AccountKind.COMPUTE, balance__gt=0).exists()
    assert books_check() == []


def test_a_device_that_keeps_disagreeing_is_suspended(
        rob: User, members: list[Member], fund: Callable[..., None]) -> None:
    fund(rob, 100_000)
    job = _submit(rob, 6, fuel=10**8, price=100_000)
    bob, carol, rita = members
    for member, output in ((bob, b"right"), (carol, b"made up"), (rita, b"right")):
        send(member, [signed(member, d, output, fuel=10**8) for d in take(member)])
    standing = Contributor.objects.get(device=carol.device)
    # Carol disagreed on all six (5 at least, and more than 5% of what she returned).
    assert (standing.disagreed, standing.agreed) == (6, 0)
    assert standing.suspended_at is not None
    with pytest.raises(ServiceError) as refused:
        take(carol)
    assert refused.value.code == "contributor_suspended"
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert books_check() == []


def test_the_deadline_cancels_what_is_unfinished_and_returns_the_rest(
        rob: User, members: list[Member], fund: Callable[..., None]) -> None:
    fund(rob, 10_000)
    job = _submit(rob, 2, fuel=10**9, price=100_000)  # budget 440
    bob, carol, _ = members
    for member in (bob, carol):
        given = [d for d in take(member) if d.unit.seq == 0]
        send(member, [signed(member, given[0], b"x", fuel=10**9)])
    late = Assignment.objects.filter(job=job, unit__seq=1, state="issued").first()
    assert late is not None
    assert jobs_expire_due(now=job.deadline + dt.timedelta(seconds=1)) == 1
    job.refresh_from_db()
    # Unit 0 cost 2 x 100 + 20 = 220; unit 1 is cancelled; 220 returned.
    assert (job.state, job.refunded_minor) == (JobState.EXPIRED, 220)
    assert WorkUnit.objects.get(job=job, seq=1).state == UnitState.CANCELLED
    late.refresh_from_db()
    assert late.state == "cancelled"
    assert books_check() == []
