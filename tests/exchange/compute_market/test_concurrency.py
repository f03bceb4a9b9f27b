"""The compute market under concurrency, on PostgreSQL: real threads, real row locks.

Eight devices of eight members take units at once (SKIP LOCKED: no unit is handed out
beyond its slots, never twice to one member); then all return their results at once,
so that the two results of a unit often arrive together: each unit is validated and
paid exactly once, and the books balance to the unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Sum

from exchange.compute_market.models import (
    Assignment,
    ComputeJob,
    JobEarning,
    JobState,
    UnitState,
    WorkUnit,
)
from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
from exchange.ledger.models import Account, AccountKind, Posting
from tests.exchange.compute_market.support import EMPTY_COMMAND, Member, enroll, send, signed, take
from tests.support.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
UNITS = 120
FUEL = 3 * 10**8
PRICE = 1_000_003  # per 10^12 fuel: a result is worth 300.0009 minor units


def test_eight_devices_at_once_take_distinct_slots_and_each_unit_is_paid_once(
        rob: Any, fund: Callable[..., None], device_of: Callable[..., Any]) -> None:
    fund(rob, 300_000)
    module = module_store(user=rob, wasm=EMPTY_COMMAND)
    job = job_submit(customer=rob, spec=JobSpec(
        name="race", module_sha256=module.sha256, currency="EUR", price_per_tfuel_minor=PRICE,
        units=[UnitSpec(input=b"%d" % i, fuel=10**9) for i in range(UNITS)]))
    members = []
    for index in range(8):
        user = get_user_model().objects.create_user(username=f"c{index}", password="x")
        keys, device = device_of(user)
        member = Member(user, keys, device)
        enroll(member)
        members.append(member)

    taken = race(8, lambda i: take(members[i], 60))
    assert not [t for t in taken if isinstance(t, Exception)], taken
    given = Counter(d.unit.pk for batch in taken for d in batch)
    # Locked units are skipped, not waited for: a race hands out fewer than all slots,
    # never more than a unit's two.
    assert 60 <= sum(given.values()) <= 2 * UNITS
    assert max(given.values()) <= 2
    per_member = Counter((a.unit_id, a.user_id) for a in Assignment.objects.all())
    assert max(per_member.values()) == 1

    answers = race(8, lambda i: send(members[i], [signed(members[i], d, b"same", fuel=FUEL)
                                                   for d in taken[i]]))
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert {o.status for batch in answers for o in batch} == {"accepted"}
    # Every unit handed out twice is validated once; a unit's two results agreed.
    validated = WorkUnit.objects.filter(job=job, state=UnitState.VALIDATED).count()
    assert validated == sum(1 for n in given.values() if n == 2)
    rest = [members[i] for i in range(8)]
    while WorkUnit.objects.filter(job=job, state=UnitState.PENDING).exists():
        progressed = False
        for member in rest:
            batch = take(member, 60)
            if batch:
                progressed = True
                send(member, [signed(member, d, b"same", fuel=FUEL) for d in batch])
        assert progressed
    job = ComputeJob.objects.get(pk=job.pk)
    assert job.state == JobState.COMPLETED
    # Budget: 120 x 10^9 x 2 x 1,000,003 / 10^12 x 1.1 = 264,000.792 -> 264,001.
    # Spent: 240 results x 300.0009 x 1.1 = 79,200.2376 -> 79,200; the rest returned.
    assert job.budget_minor == 264_001
    assert job.refunded_minor == 264_001 - 79_200
    wallet = Account.objects.get(owner=rob, kind=AccountKind.WALLET, currency="EUR")
    assert wallet.balance == 300_000 - 79_200
    earnings = JobEarning.objects.filter(job=job, user__isnull=False)
    assert earnings.aggregate(n=Sum("units"))["n"] == 2 * UNITS
    for earning in earnings:
        # Each member: its results x 300.0009, rounded down or up.
        exact_floor = earning.units * 3_000_009 // 10_000
        credit = Account.objects.get(owner_id=earning.user_id, kind=AccountKind.COMPUTE)
        assert credit.balance in (exact_floor, exact_floor + 1)
    fees = Account.objects.get(kind=AccountKind.FEES, currency="EUR")
    paid_out = sum(Account.objects.filter(kind=AccountKind.COMPUTE).values_list("balance",
                                                                                 flat=True))
    fee = Posting.objects.filter(account=fees).aggregate(s=Sum("amount"))["s"]
    assert paid_out + fee == 79_200
    assert Posting.objects.aggregate(s=Sum("amount"))["s"] == 0
    for account in Account.objects.filter(guarded=True):
        posted = Posting.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == posted
    assert not Assignment.objects.values("unit_id", "user_id").annotate(
        n=Count("id")).filter(n__gt=1).exists()
