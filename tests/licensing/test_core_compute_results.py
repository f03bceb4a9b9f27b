"""Compute results: signed by the contributor's device, read by the platform, forged by no one.

The attacker is a contributor who wants more pay than its work earned (more fuel), or
another's result counted as its own, or one document kind passed as another.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.core import (
    BadSignatureError,
    ComputeStop,
    DeviceKeys,
    DocumentKind,
    LicensingError,
    MalformedError,
    MismatchError,
    NotYetValidError,
    OversizedError,
    WrongDeviceError,
    WrongTypeError,
    read_compute_result,
    sign_compute_result,
)
from licensing.core.jws import DEFAULT_LEEWAY

from .core_support import NOW, counter_random, decode_part, forge

OUTPUT = hashlib.sha256(b"the tile's pixels").digest()
JOB, UNIT = "job-7f3a", "unit-0042"
RUNTIME = "wasmtime-50.0.1+pm-sandbox-1"


class Device:
    """A device's keys, with the raw signing key kept for forging (attacks only)."""

    def __init__(self) -> None:
        self.signing_key = Ed25519PrivateKey.generate()
        self.keys = DeviceKeys(signing_key=self.signing_key, kem_key=X25519PrivateKey.generate())


@pytest.fixture(scope="module")
def bob() -> Device:
    return Device()


@pytest.fixture(scope="module")
def carol() -> Device:
    return Device()


def result(device: Device, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "job_id": JOB,
        "unit_id": UNIT,
        "output_sha256": OUTPUT,
        "output_size": 12_288,
        "stop": ComputeStop.EXIT,
        "exit_status": 0,
        "fuel": 46_161_128,
        "runtime": RUNTIME,
        "issued_at": NOW,
    }
    fields.update(changes)
    return sign_compute_result(device.keys, **fields)


def read(token: object, device: Device, **changes: Any) -> Any:
    arguments: dict[str, Any] = {"job_id": JOB, "unit_id": UNIT, "now": NOW}
    arguments.update(changes)
    return read_compute_result(token, device=device.keys.public, **arguments)


def test_a_result_round_trips(bob: Device) -> None:
    read_back = read(result(bob, random=counter_random()), bob)
    assert read_back.job_id == JOB
    assert read_back.unit_id == UNIT
    assert read_back.device_id == bob.keys.device_id
    assert read_back.output_sha256 == OUTPUT
    assert read_back.output_size == 12_288
    assert read_back.stop is ComputeStop.EXIT
    assert read_back.exit_status == 0
    assert read_back.fuel == 46_161_128
    assert read_back.runtime == RUNTIME
    assert read_back.issued_at == NOW
    assert len(read_back.nonce) == 22


def test_the_claims_are_exactly_the_documented_ones(bob: Device) -> None:
    header, claims = decode_part(result(bob), 0), decode_part(result(bob), 1)
    assert header == {"alg": "Ed25519", "kid": bob.keys.device_id,
                      "typ": "pm-compute-result+jwt"}  # fmt: skip
    assert set(claims) == {"job", "unit", "dev", "sha256", "size", "stop", "exit", "fuel",
                           "rt", "iat", "nonce"}  # fmt: skip
    assert claims["dev"] == bob.keys.device_id
    stopped = decode_part(result(bob, stop=ComputeStop.OUT_OF_FUEL, exit_status=None), 1)
    assert "exit" not in stopped
    assert stopped["stop"] == "out-of-fuel"


def test_two_signings_of_one_result_differ_by_their_nonce_and_agree(bob: Device) -> None:
    first, second = read(result(bob), bob), read(result(bob), bob)
    assert first.nonce != second.nonce
    assert first.agreement == second.agreement


@pytest.mark.parametrize(
    "stop", [ComputeStop.OUT_OF_FUEL, ComputeStop.MEMORY, ComputeStop.TRAP,
             ComputeStop.OUTPUT_TOO_LARGE, ComputeStop.WALL_CLOCK, ComputeStop.WORKER_FAILED],
)  # fmt: skip
def test_every_stop_reason_round_trips_without_an_exit_status(
    bob: Device, stop: ComputeStop
) -> None:
    read_back = read(result(bob, stop=stop, exit_status=None), bob)
    assert read_back.stop is stop
    assert read_back.exit_status is None


# --- another device ------------------------------------------------------------------


def test_a_result_signed_by_another_device_is_refused(bob: Device, carol: Device) -> None:
    with pytest.raises(WrongDeviceError):
        read(result(carol), bob)


def test_another_devices_key_under_this_devices_kid_fails_the_signature(
    bob: Device, carol: Device
) -> None:
    genuine = result(bob)
    forged = forge(decode_part(genuine, 0), decode_part(genuine, 1), carol.signing_key)
    with pytest.raises(BadSignatureError):
        read(forged, bob)


def test_a_result_that_names_another_device_inside_is_refused(bob: Device, carol: Device) -> None:
    genuine = result(bob)
    claims = {**decode_part(genuine, 1), "dev": carol.keys.device_id}
    with pytest.raises(WrongDeviceError):
        read(forge(decode_part(genuine, 0), claims, bob.signing_key), bob)


# --- tampering ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"fuel": 46_161_129}, {"fuel": 10**15}, {"sha256": "00" * 32}, {"size": 1},
     {"exit": 1}, {"unit": "unit-0043"}],
)  # fmt: skip
def test_a_tampered_claim_breaks_the_signature(bob: Device, changes: dict[str, Any]) -> None:
    genuine = result(bob)
    header, _, signature = genuine.split(".")
    claims = {**decode_part(genuine, 1), **changes}
    tampered_payload = forge(decode_part(genuine, 0), claims, bob.signing_key).split(".")[1]
    with pytest.raises(BadSignatureError):
        read(f"{header}.{tampered_payload}.{signature}", bob)


def test_a_result_for_another_job_or_unit_is_refused(bob: Device) -> None:
    with pytest.raises(MismatchError):
        read(result(bob), bob, unit_id="unit-0043")
    with pytest.raises(MismatchError):
        read(result(bob), bob, job_id="job-other")


def test_a_result_from_the_future_is_refused_after_the_leeway(bob: Device) -> None:
    read(result(bob, issued_at=NOW + DEFAULT_LEEWAY), bob)
    with pytest.raises(NotYetValidError):
        read(result(bob, issued_at=NOW + DEFAULT_LEEWAY + 1), bob)


@pytest.mark.parametrize(
    "changes",
    [
        {"fuel": -1},
        {"fuel": 1.5},
        {"fuel": True},
        {"fuel": "46161128"},
        {"size": -1},
        {"exit": -1},
        {"exit": 2**32},
        {"stop": "crashed"},
        {"stop": "out-of-fuel"},  # with an exit status
        {"sha256": "AB" * 32},
        {"sha256": "00" * 31},
        {"nonce": "short"},
        {"rt": ""},
        {"dev": 5},
        {"extra": 1},
    ],
)
def test_a_result_with_bad_claims_is_malformed(bob: Device, changes: dict[str, Any]) -> None:
    genuine = result(bob)
    claims = {**decode_part(genuine, 1), **changes}
    with pytest.raises(MalformedError):
        read(forge(decode_part(genuine, 0), claims, bob.signing_key), bob)


@pytest.mark.parametrize("missing", ["job", "unit", "dev", "sha256", "size", "stop", "fuel",
                                     "rt", "iat", "nonce", "exit"])  # fmt: skip
def test_a_result_missing_a_claim_is_malformed(bob: Device, missing: str) -> None:
    genuine = result(bob)
    claims = {k: v for k, v in decode_part(genuine, 1).items() if k != missing}
    with pytest.raises(MalformedError):
        read(forge(decode_part(genuine, 0), claims, bob.signing_key), bob)


def test_an_oversized_result_is_refused_before_parsing(bob: Device) -> None:
    with pytest.raises(OversizedError):
        read("a" * (DocumentKind.COMPUTE_RESULT.max_token_bytes + 1), bob)


@pytest.mark.parametrize(
    "changes",
    [
        {"stop": ComputeStop.EXIT, "exit_status": None},
        {"stop": ComputeStop.TRAP, "exit_status": 0},
        {"stop": "crashed", "exit_status": None},
        {"output_sha256": b"short"},
        {"fuel": -1},
        {"exit_status": 2**32},
        {"job_id": "has space"},
        {"runtime": ""},
    ],
)
def test_signing_refuses_what_no_reader_would_accept(bob: Device, changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        result(bob, **changes)


# --- one kind never passes as another (and the matrix in test_core_tokens.py) ---------------


def test_a_receipt_shaped_token_under_the_compute_typ_is_still_refused(bob: Device) -> None:
    genuine = result(bob)
    header = {**decode_part(genuine, 0), "typ": DocumentKind.RECEIPT.typ}
    with pytest.raises(WrongTypeError):
        read(forge(header, decode_part(genuine, 1), bob.signing_key), bob)


@settings(max_examples=150, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(["job", "unit", "dev", "sha256", "size", "stop", "exit", "fuel", "rt",
                         "iat", "nonce", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=70),
                  st.lists(st.integers(), max_size=3)),
    )
)  # fmt: skip
def test_validly_signed_random_claims_raise_only_licensing_errors(
    bob: Device, claims: dict[str, Any]
) -> None:
    genuine = result(bob)
    token = forge(decode_part(genuine, 0), {**decode_part(genuine, 1), **claims}, bob.signing_key)
    with contextlib.suppress(LicensingError):
        read(token, bob)
