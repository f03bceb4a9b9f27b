"""A unit's result becomes a signed compute result that the platform can check and compare."""

from __future__ import annotations

import dataclasses

import pytest
from wasmtime import Engine

from compute.results import matches, sign_unit_result
from compute.unit import StopReason
from licensing.core import ComputeStop, DeviceKeys, read_compute_result

from .support import run
from .test_sandbox import ECHO, INFINITE_LOOP

NOW = 1_900_000_000


@pytest.fixture(scope="module")
def devices() -> tuple[DeviceKeys, DeviceKeys]:
    return DeviceKeys.generate(), DeviceKeys.generate()


def test_the_sandbox_and_the_document_share_one_stop_vocabulary() -> None:
    assert [s.value for s in StopReason] == [s.value for s in ComputeStop]


def test_a_signed_result_reads_back_as_what_the_sandbox_produced(
    engine: Engine, devices: tuple[DeviceKeys, DeviceKeys]
) -> None:
    device, _ = devices
    result = run(engine, ECHO, stdin=b"pixels")
    token = sign_unit_result(device, result, issued_at=NOW)
    document = read_compute_result(token, device=device.public, job_id=result.job_id,
                                   unit_id=result.unit_id, now=NOW)  # fmt: skip
    assert matches(result, document)
    assert document.exit_status == 7
    assert document.output_size == len(b"pixels")
    assert document.fuel == result.fuel_consumed


def test_two_devices_running_one_unit_agree_and_a_lie_about_fuel_does_not(
    engine: Engine, devices: tuple[DeviceKeys, DeviceKeys]
) -> None:
    bob, carol = devices
    documents = []
    for device in devices:
        result = run(engine, INFINITE_LOOP, fuel=3_000_000)
        token = sign_unit_result(device, result, issued_at=NOW)
        documents.append(read_compute_result(token, device=device.public, job_id="job-1",
                                             unit_id="unit-1", now=NOW))  # fmt: skip
    assert documents[0].agreement == documents[1].agreement
    assert documents[0].stop is ComputeStop.OUT_OF_FUEL
    assert documents[0].device_id == bob.device_id != documents[1].device_id == carol.device_id

    honest = run(engine, INFINITE_LOOP, fuel=3_000_000)
    inflated = dataclasses.replace(honest, fuel_consumed=honest.fuel_consumed + 1)
    greedy = read_compute_result(sign_unit_result(carol, inflated, issued_at=NOW),
                                 device=carol.public, job_id="job-1", unit_id="unit-1",
                                 now=NOW)  # fmt: skip
    assert greedy.agreement != documents[0].agreement
    assert not matches(honest, greedy)
