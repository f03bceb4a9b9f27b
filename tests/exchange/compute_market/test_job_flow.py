"""A job from submission to its end, through the services: dispatch, quorum, payment,
refund; the expected amounts are worked out by hand in each test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum

from exchange.accounts.models import User
from exchange.compute_market.jobs_lifecycle import job_cancel
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
from exchange.ledger.models import Account, AccountKind, Posting
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


def Assignment_of(member: Member, job: ComputeJob) -> Any:  # noqa: N802
    from exchange.compute_market.dispatch import Dispatched

    a = Assignment.objects.select_related("unit", "job").get(job=job, device=member.device)
    return Dispatched(assignment=a, unit=a.unit, job=a.job)
