"""Misbehaving programs on the market, run for real in the sandbox on two members'
devices: a deterministic stop (out of fuel, memory, a trap, too much output) is a
result the devices agree on and are paid for by the fuel it burned; a stop by a device's
own wall clock is no vote, and the unit goes to another device. Every balance stays
exact (the books check)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compute.limits import Limits
from compute.results import sign_unit_result
from compute.unit import Unit
from compute.worker import Sandbox
from exchange.accounts.models import User
from exchange.compute_market.dispatch import Dispatched
from exchange.compute_market.intake import ResultItem
from exchange.compute_market.models import Assignment, ComputeModule, UnitState, Verdict, WorkUnit
from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
from exchange.ledger.models import Account, AccountKind
from exchange.operations.books import books_check
from tests.compute.support import FD_WRITE, command, write_out
from tests.exchange.compute_market.support import Member, enroll, send, take

pytestmark = pytest.mark.django_db(transaction=True)
FUEL_CAP = 2_000_000
PRICE = 10**9  # per 10^12 fuel: 1 minor unit per 1,000 fuel

PROGRAMS = {
    "loops forever": command(body="(loop $again (br $again))"),
    "allocates without bound": command(
        body="(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))"
             " (unreachable)"),
    "traps": command(body="(unreachable)"),
    "floods its output": command(imports=FD_WRITE, memory_pages=2,
                                 body=f"(loop $again {write_out(0, 65536)} (br $again))"),
}


def _run(member: Member, sandbox: Sandbox, given: list[Dispatched]) -> list[ResultItem]:
    items = []
    for d in given:
        wasm = ComputeModule.objects.filter(pk=d.job.module_id).values_list("wasm", flat=True)
        module = sandbox.prepare(bytes(wasm[0]))
        result = sandbox.run(module, Unit(job_id=str(d.job.pk), unit_id=d.unit.unit_id,
                                          input=bytes(d.unit.input), fuel=d.unit.fuel_cap))
        token = sign_unit_result(member.keys, result, issued_at=int(time.time()))
        items.append(ResultItem(assignment=d.assignment.pk, token=token, output=result.output))
    return items


@pytest.mark.parametrize("behaviour", sorted(PROGRAMS))
def test_a_deterministic_stop_is_agreed_and_paid_by_its_fuel(
        behaviour: str, rob: User, bob: User, carol: User, fund: Callable[..., None],
        device_of: Callable[..., Any], tmp_path: Path) -> None:
    fund(rob, 100_000)
    module = module_store(user=rob, wasm=PROGRAMS[behaviour])
    job = job_submit(customer=rob, spec=JobSpec(
        name=behaviour, module_sha256=module.sha256, currency="EUR",
        price_per_tfuel_minor=PRICE, memory_bytes=4 * 2**20, output_bytes=100_000,
        units=[UnitSpec(input=b"", fuel=FUEL_CAP)]))
    limits = Limits(memory_bytes=job.memory_bytes, output_bytes=job.output_bytes,
                    wall_seconds=30.0)
    stops = []
    for user in (bob, carol):
        keys, device = device_of(user)
        member = Member(user, keys, device)
        enroll(member)
        sandbox = Sandbox(tmp_path / user.username, limits=limits)
        given = take(member)
        assert len(given) == 1
        outcomes = send(member, _run(member, sandbox, given))
        assert [o.status for o in outcomes] == ["accepted"]
        stops.append(Assignment.objects.get(pk=given[0].assignment.pk).stop)
    unit = WorkUnit.objects.get(job=job)
    assert unit.state == UnitState.VALIDATED, (stops, unit.detail)
    expected = {"loops forever": "out-of-fuel", "allocates without bound": "memory",
                "traps": "trap", "floods its output": "output-too-large"}[behaviour]
    assert unit.stop == expected
    assert set(Assignment.objects.filter(unit=unit).values_list("verdict", flat=True)) == {
        Verdict.AGREED}
    # Each device is paid the fuel the unit burned: fuel / 1,000 minor units (rounded
    # down or up at the job's end), never more than the cap's 2,000.
    assert unit.fuel is not None
    assert unit.fuel <= FUEL_CAP
    for user in (bob, carol):
        account = Account.objects.filter(owner=user, kind=AccountKind.COMPUTE).first()
        credit = account.balance if account else 0
        assert credit in (unit.fuel // 1000, unit.fuel // 1000 + 1)
    if behaviour == "loops forever":
        assert unit.fuel == FUEL_CAP
    assert books_check() == []


def test_a_device_stopped_by_its_own_wall_clock_is_no_vote(
        rob: User, bob: User, carol: User, rita: User, fund: Callable[..., None],
        device_of: Callable[..., Any], tmp_path: Path) -> None:
    fund(rob, 10_000)
    module = module_store(user=rob, wasm=PROGRAMS["loops forever"])
    fuel = 2 * 10**9  # a few seconds of looping
    job = job_submit(customer=rob, spec=JobSpec(
        name="slow", module_sha256=module.sha256, currency="EUR", price_per_tfuel_minor=1000,
        memory_bytes=4 * 2**20, units=[UnitSpec(input=b"", fuel=fuel)]))
    patient = Limits(memory_bytes=job.memory_bytes, output_bytes=job.output_bytes,
                     wall_seconds=120.0)
    impatient = Limits(memory_bytes=job.memory_bytes, output_bytes=job.output_bytes,
                       wall_seconds=0.2)
    for user, limits in ((bob, impatient), (carol, patient), (rita, patient)):
        keys, device = device_of(user)
        member = Member(user, keys, device)
        enroll(member)
        given = take(member)
        assert len(given) == 1, user.username
        send(member, _run(member, Sandbox(tmp_path / user.username, limits=limits), given))
    verdicts = dict(Assignment.objects.filter(job=job).values_list("user__username",
                                                                   "verdict"))
    assert verdicts == {"bob": Verdict.NO_VOTE, "carol": Verdict.AGREED,
                        "rita": Verdict.AGREED}
    assert WorkUnit.objects.get(job=job).stop == "out-of-fuel"
    assert books_check() == []
