"""Helpers for the compute market's tests: a job, contributors, signed results.

Results here are signed by real device keys but not computed: these tests are about
the market (dispatch, quorum, money), not the sandbox, which tests/compute covers.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from compute.profile import runtime_profile
from exchange.accounts.models import User
from exchange.compute_market.contributors import contributor_enroll
from exchange.compute_market.dispatch import Dispatched, units_dispatch
from exchange.compute_market.intake import ItemOutcome, ResultItem, results_submit
from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
from licensing.core import ComputeStop, DeviceKeys, sign_compute_result

# The smallest WASI command: exports memory and an empty _start.
EMPTY_COMMAND = bytes.fromhex(
    "0061736d01000000010401600000030201000503010001071302066d656d6f7279"
    "0200065f737461727400000a040102000b"
)


@dataclass
class Member:
    user: User
    keys: DeviceKeys
    device: Any

    @property
    def device_id(self) -> str:
        return self.keys.device_id


def enroll(member: Member, *, memory_bytes: int = 256 * 2**20) -> None:
    contributor_enroll(user=member.user, device_id=member.device_id, runtime=runtime_profile(),
                       cores=2, memory_bytes=memory_bytes)


def take(member: Member, n: int = 50) -> list[Dispatched]:
    return units_dispatch(user=member.user, device_id=member.device_id, max_units=n)


def signed(member: Member, d: Dispatched, output: bytes, *, fuel: int,
           stop: ComputeStop = ComputeStop.EXIT, exit_status: int | None = 0,
           runtime: str | None = None) -> ResultItem:
    token = sign_compute_result(
        member.keys, job_id=str(d.job.pk), unit_id=str(d.unit.seq),
        output_sha256=hashlib.sha256(output).digest(), output_size=len(output), stop=stop,
        exit_status=exit_status, fuel=fuel, runtime=runtime or runtime_profile(),
        issued_at=int(time.time()))
    return ResultItem(assignment=d.assignment.pk, token=token, output=output)


def send(member: Member, items: list[ResultItem]) -> list[ItemOutcome]:
    return results_submit(user=member.user, device_id=member.device_id, items=items)


def compute_earned(customer: Any, contributors: list[Any], fund: Any, device_of: Any,
                   commit: Any) -> None:
    """Run a one-unit compute job to its end through the market's services: both
    contributors burn 1.5 x 10^9 fuel at 10.00 per 10^12, so each earns 15.00 of compute
    credit and the platform 3.00; of the 44.00 budget the customer gets 11.00 back when
    the job ends (``commit`` is ``django_capture_on_commit_callbacks``: the job ends on
    commit)."""
    fund(customer, 10_000)
    module = module_store(user=customer, wasm=EMPTY_COMMAND)
    job_submit(customer=customer, spec=JobSpec(
        name="render", module_sha256=module.sha256, currency="EUR",
        price_per_tfuel_minor=1_000_000, replication=2,
        units=[UnitSpec(input=b"0", fuel=2 * 10**9)]))
    for user in contributors:
        keys, device = device_of(user)
        member = Member(user, keys, device)
        enroll(member)
        (dispatched,) = take(member)
        with commit(execute=True):
            outcomes = send(member, [signed(member, dispatched, b"frame", fuel=1_500_000_000)])
        assert [o.status for o in outcomes] == ["accepted"]
