"""A unit's result as the signed document a contributor's device sends the platform.

The document kind itself (claims, ``typ``, strict reading) lives in the licensing
core (``licensing.core.compute_results``) beside the other signed documents, so the
platform verifies it with the same profile and code; this is only the bridge from
the sandbox's ``UnitResult`` to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from licensing.core import ComputeResult, ComputeStop, DeviceKeys, sign_compute_result

from .unit import UnitResult


def sign_unit_result(
    device: DeviceKeys,
    result: UnitResult,
    *,
    issued_at: int,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """Sign ``result`` with the device key (``pm-compute-result+jwt``)."""
    return sign_compute_result(
        device,
        job_id=result.job_id,
        unit_id=result.unit_id,
        output_sha256=result.output_sha256,
        output_size=len(result.output),
        stop=ComputeStop(result.stop.value),
        exit_status=result.exit_status,
        fuel=result.fuel_consumed,
        runtime=result.runtime,
        issued_at=issued_at,
        random=random,
    )


def matches(result: UnitResult, document: ComputeResult) -> bool:
    """Whether a verified document says what ``result`` says (same job, unit and
    agreement tuple): how a device or the platform checks a peer's result against its own."""
    return (
        (document.job_id, document.unit_id) == (result.job_id, result.unit_id)
        and document.agreement == (
            result.output_sha256, len(result.output), ComputeStop(result.stop.value),
            result.exit_status, result.fuel_consumed, result.runtime,
        )
    )  # fmt: skip
