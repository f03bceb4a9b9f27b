"""Compute results: what a contributor's device signs for one work unit it ran.

A compute job is a WebAssembly module and its work units; contributors' agents run
each unit in the sandbox (``compute/``) on at least two devices of different users,
and the platform accepts a unit when their results agree. This document is one
device's word on one unit: what came out, how it ended and how much fuel (metered
WebAssembly instructions) it took. Payment is fuel x price, so the fuel figure is
signed, and a device that lies about it is caught by the others' results.

Claims (typ ``pm-compute-result+jwt``, signed by the DEVICE's Ed25519 key; ``kid`` is
the device id):

    job     job id
    unit    work unit id
    dev     the device id again, inside the signed claims (must equal ``kid``)
    sha256  SHA-256 of the unit's output (its standard output), hex
    size    output size in bytes
    stop    how the unit ended, one of ``ComputeStop``
    exit    the exit status, present exactly when ``stop`` is ``exit``
    fuel    fuel consumed
    rt      the sandbox profile that ran it (runtime version and settings): fuel is
            only comparable between identical profiles
    iat     when the device finished the unit (Unix seconds)
    nonce   16 random bytes, base64url: two runs of one unit sign distinct documents

Results agree when ``sha256``, ``size``, ``stop``, ``exit``, ``fuel`` and ``rt`` are
identical (``ComputeResult.agreement``). The platform reads a result with
``read_compute_result`` under the key registered for that device, for the unit it
handed out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .device import DeviceKeys, DevicePublicKeys
from .encoding import ClaimReader, b64url_encode, check_identifier
from .errors import MalformedError, MismatchError, WrongDeviceError
from .jws import DEFAULT_LEEWAY, check_lifetime, parse_document, verify_signature
from .kinds import DocumentKind

NONCE_BYTES = 16
# 16 bytes in canonical unpadded base64url: 21 free characters, then one whose low
# four bits are zero (as for orders).
_NONCE = re.compile(r"^[A-Za-z0-9_-]{21}[AQgw]$")
MAX_EXIT_STATUS = 2**32 - 1  # WASI's exit code is a u32
MAX_COUNT = 2**63 - 1
_CLAIMS = frozenset(
    ("job", "unit", "dev", "sha256", "size", "stop", "fuel", "rt", "iat", "nonce")
)


class ComputeStop(StrEnum):
    """How a unit ended (a closed vocabulary).

    ``exit`` is the program's own end (``proc_exit`` or returning from ``_start``);
    the others are the sandbox stopping it. All but ``wall-clock`` and
    ``worker-failed`` are deterministic, so devices can agree on them.
    """

    EXIT = "exit"
    OUT_OF_FUEL = "out-of-fuel"
    WALL_CLOCK = "wall-clock"
    MEMORY = "memory"
    TRAP = "trap"
    OUTPUT_TOO_LARGE = "output-too-large"
    WORKER_FAILED = "worker-failed"


@dataclass(frozen=True)
class ComputeResult:
    """A verified compute result."""

    job_id: str
    unit_id: str
    device_id: str
    output_sha256: bytes
    output_size: int
    stop: ComputeStop
    exit_status: int | None
    fuel: int
    runtime: str
    issued_at: int
    nonce: str

    @property
    def agreement(self) -> tuple[bytes, int, ComputeStop, int | None, int, str]:
        """What two devices' results must share to agree on a unit."""
        return (
            self.output_sha256,
            self.output_size,
            self.stop,
            self.exit_status,
            self.fuel,
            self.runtime,
        )


def _check_count(value: object, *, what: str, maximum: int = MAX_COUNT) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise MalformedError(f"{what} is an integer from 0 to {maximum}")
    return value


def sign_compute_result(
    device: DeviceKeys,
    *,
    job_id: str,
    unit_id: str,
    output_sha256: bytes,
    output_size: int,
    stop: ComputeStop,
    exit_status: int | None,
    fuel: int,
    runtime: str,
    issued_at: int,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """Sign a unit's result with the device key; the ``kid`` and ``dev`` are its id."""
    check_identifier(job_id, what="job id")
    check_identifier(unit_id, what="unit id")
    check_identifier(runtime, what="runtime profile")
    if not isinstance(output_sha256, bytes) or len(output_sha256) != 32:
        raise MalformedError("the output hash is a 32-byte SHA-256")
    try:
        stop = ComputeStop(stop)
    except ValueError:
        raise MalformedError(f"unknown stop reason {stop!r}") from None
    if (stop is ComputeStop.EXIT) != (exit_status is not None):
        raise MalformedError("give an exit status exactly when the unit exited")
    claims: dict[str, object] = {
        "job": job_id,
        "unit": unit_id,
        "dev": device.device_id,
        "sha256": output_sha256.hex(),
        "size": _check_count(output_size, what="output size"),
        "stop": stop.value,
        "fuel": _check_count(fuel, what="fuel"),
        "rt": runtime,
        "iat": _check_count(issued_at, what="issued at"),
        "nonce": b64url_encode(random(NONCE_BYTES)),
    }
    if exit_status is not None:
        claims["exit"] = _check_count(exit_status, what="exit status", maximum=MAX_EXIT_STATUS)
    return device.sign(DocumentKind.COMPUTE_RESULT, claims)


def read_compute_result(
    token: object,
    *,
    device: DevicePublicKeys,
    job_id: str,
    unit_id: str,
    now: int,
    leeway: int = DEFAULT_LEEWAY,
) -> ComputeResult:
    """Verify a result: signed by ``device``, for that job and unit, not from the future.

    ``device`` is the key the platform registered for the device the unit was handed
    to; the token's ``kid`` must name it, so a result signed by any other device (or
    re-signed under another key) is refused before its claims are read.
    """
    document = parse_document(token, DocumentKind.COMPUTE_RESULT)
    if document.kid != device.device_id:
        raise WrongDeviceError("the result is signed by another device than the one named")
    verify_signature(document, device.signing_key)
    reader = ClaimReader(
        document.claims, required=_CLAIMS, optional=("exit",), what="compute result"
    )
    if reader.identifier("dev") != device.device_id:
        raise WrongDeviceError("the result names another device than its signer")
    if reader.identifier("job") != job_id:
        raise MismatchError("the result is for another job")
    if reader.identifier("unit") != unit_id:
        raise MismatchError("the result is for another unit")
    issued_at = reader.integer("iat")
    check_lifetime(issued_at=issued_at, expires_at=None, now=now, leeway=leeway)
    try:
        stop = ComputeStop(reader.raw("stop"))
    except ValueError:
        raise MalformedError("unknown stop reason") from None
    exit_status: int | None = None
    if reader.has("exit"):
        if stop is not ComputeStop.EXIT:
            raise MalformedError("only a unit that exited has an exit status")
        exit_status = reader.integer("exit", maximum=MAX_EXIT_STATUS)
    elif stop is ComputeStop.EXIT:
        raise MalformedError("a unit that exited must give its exit status")
    nonce = reader.raw("nonce")
    if type(nonce) is not str or not _NONCE.fullmatch(nonce):
        raise MalformedError("compute result nonce must be 16 bytes in canonical base64url")
    return ComputeResult(
        job_id=job_id,
        unit_id=unit_id,
        device_id=device.device_id,
        output_sha256=reader.hex("sha256", length=32),
        output_size=reader.integer("size"),
        stop=stop,
        exit_status=exit_status,
        fuel=reader.integer("fuel"),
        runtime=reader.identifier("rt"),
        issued_at=issued_at,
        nonce=nonce,
    )
