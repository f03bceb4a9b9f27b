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
