"""A work unit, and what running it produced.

Plain data, no WebAssembly runtime: the agent's side of the worker process (and the
platform, later) handles these without loading wasmtime.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import BadRequestError
from .limits import Limits, check_int

# The same identifiers the signed documents carry: 1-128 printable ASCII, no spaces.
_IDENTIFIER = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_FUEL = 2**63 - 1
MAX_ARGS_BYTES = 64 * 1024
DEFAULT_ARGS = ("job",)


class StopReason(StrEnum):
    """How a unit ended: the program's own ``exit``, or the sandbox stopping it.

    The same vocabulary as the signed result's ``stop`` claim
    (``licensing.core.ComputeStop``; a test keeps the two equal). It is repeated here so
    that a worker process does not load the licensing core (and its cryptography) for
    every unit. All but ``wall-clock`` and ``worker-failed`` are deterministic.
    """

    EXIT = "exit"
    OUT_OF_FUEL = "out-of-fuel"
    WALL_CLOCK = "wall-clock"
    MEMORY = "memory"
    TRAP = "trap"
    OUTPUT_TOO_LARGE = "output-too-large"
    WORKER_FAILED = "worker-failed"


def check_identifier(value: object, *, what: str) -> str:
    """An opaque id (job, unit): 1-128 printable ASCII characters, no spaces."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise BadRequestError(f"{what} must be 1-128 printable ASCII characters, not {value!r}")
    return value


@dataclass(frozen=True)
class Unit:
    """One work unit: the module's standard input and the fuel it may burn.

    ``args`` is the program's argv (argv[0] first); it belongs to the job, like the
    module. The unit's random numbers (WASI ``random_get``) are derived from
    ``job_id`` and ``unit_id``, so every device draws the same ones.
    """

    job_id: str
    unit_id: str
    input: bytes = field(repr=False)
    fuel: int
    args: tuple[str, ...] = DEFAULT_ARGS

    def __post_init__(self) -> None:
        check_identifier(self.job_id, what="job id")
        check_identifier(self.unit_id, what="unit id")
        if not isinstance(self.input, bytes):
            raise BadRequestError("a unit's input is bytes")
        check_int("fuel", self.fuel, 1, MAX_FUEL)
        if not isinstance(self.args, tuple) or not all(isinstance(a, str) for a in self.args):
            raise BadRequestError("args is a tuple of strings")
        encoded = [a.encode("utf-8") for a in self.args]
        if any(b"\0" in a for a in encoded):
            raise BadRequestError("an argument may not contain a NUL character")
        if sum(len(a) + 1 for a in encoded) > MAX_ARGS_BYTES:
            raise BadRequestError(f"args take more than {MAX_ARGS_BYTES} bytes")


def check_input(unit: Unit, limits: Limits) -> None:
    """Refuse a unit whose input is over the limit (before any process is started)."""
    if len(unit.input) > limits.input_bytes:
        raise BadRequestError(
            f"the unit's input is {len(unit.input):,} bytes, over the limit of "
            f"{limits.input_bytes:,}"
        )


@dataclass(frozen=True)
class UnitResult:
    """What a unit produced and how it ended.

    ``stop`` says how it ended; ``exit_status`` is set exactly when it is ``EXIT``.
    ``output`` is standard output as written up to the stop; ``stderr_tail`` the end
    of standard error (for people; not compared). ``fuel_consumed`` is the metered
    instruction count that payment is based on. ``detail`` explains a stop in words.
    ``runtime`` names the sandbox profile: fuel is only comparable within one.
    """

    job_id: str
    unit_id: str
    stop: StopReason
    exit_status: int | None
    output: bytes = field(repr=False)
    stderr_tail: bytes = field(repr=False)
    fuel_consumed: int
    detail: str
    runtime: str

    @property
    def output_sha256(self) -> bytes:
        return hashlib.sha256(self.output).digest()

    @property
    def agreement(self) -> tuple[bytes, int, StopReason, int | None, int, str]:
        """What two devices' results for this unit must share to agree (the same
        tuple as ``licensing.core.ComputeResult.agreement``)."""
        return (
            self.output_sha256,
            len(self.output),
            self.stop,
            self.exit_status,
            self.fuel_consumed,
            self.runtime,
        )
