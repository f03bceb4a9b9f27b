"""The limits a unit runs under, and which of them belong to the job.

Some limits change what a unit computes, so every device must apply the same value
or honest devices would disagree: the fuel cap (where a unit stops), the memory cap
(when ``memory.grow`` starts answering -1) and the output cap (when a unit is
stopped for writing too much). Those come with the job; the fuel cap with each unit
(``Unit.fuel``), the other two in ``Limits``. The wall-clock cap and the stderr tail
only bound what a contributor spends or keeps, and are the device's own choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadRequestError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
WASM_PAGE = 64 * KIB

#: largest module accepted (parsed and compiled by Cranelift, so bounded)
DEFAULT_MODULE_BYTES = 8 * MIB
#: linear memory a unit may grow to (job-determined)
DEFAULT_MEMORY_BYTES = 256 * MIB
#: standard output a unit may write (job-determined)
DEFAULT_OUTPUT_BYTES = 64 * MIB
#: the end of standard error kept for the contributor and the customer to read
DEFAULT_STDERR_TAIL_BYTES = 4 * KIB
#: largest input (standard input) of one unit
DEFAULT_INPUT_BYTES = 64 * MIB
#: wall-clock seconds a unit may run before the sandbox interrupts it
DEFAULT_WALL_SECONDS = 60.0


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an integer in ``[low, high]``, else a ``BadRequestError``."""
    # bool is an int in Python; True is not a size.
    if type(value) is not int or not low <= value <= high:
        raise BadRequestError(f"{name} must be an integer from {low:,} to {high:,}, not {value!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What a unit may use. Job-determined: ``memory_bytes``, ``output_bytes``."""

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    wall_seconds: float = DEFAULT_WALL_SECONDS
    stderr_tail_bytes: int = DEFAULT_STDERR_TAIL_BYTES
    module_bytes: int = DEFAULT_MODULE_BYTES
    input_bytes: int = DEFAULT_INPUT_BYTES

    def __post_init__(self) -> None:
        # A wasm32 memory is at most 4 GiB; one page is the least a module can have.
        check_int("memory_bytes", self.memory_bytes, WASM_PAGE, 4 * GIB)
        check_int("output_bytes", self.output_bytes, 0, 1 * GIB)
        check_int("stderr_tail_bytes", self.stderr_tail_bytes, 0, 1 * MIB)
        check_int("module_bytes", self.module_bytes, 8, 64 * MIB)
        check_int("input_bytes", self.input_bytes, 0, 1 * GIB)
        wall = self.wall_seconds
        if isinstance(wall, bool) or not isinstance(wall, int | float) or not 0 < wall <= 86_400:
            raise BadRequestError(
                f"wall_seconds must be more than 0 and at most a day, not {wall!r}"
            )

    def to_json(self) -> dict[str, int | float]:
        """The limits as the worker protocol carries them."""
        return {
            "memory_bytes": self.memory_bytes,
            "output_bytes": self.output_bytes,
            "wall_seconds": float(self.wall_seconds),
            "stderr_tail_bytes": self.stderr_tail_bytes,
            "module_bytes": self.module_bytes,
            "input_bytes": self.input_bytes,
        }

    @classmethod
    def from_json(cls, value: object) -> Limits:
        """Read ``to_json``'s output back; anything else is a ``BadRequestError``."""
        names = {"memory_bytes", "output_bytes", "wall_seconds", "stderr_tail_bytes",
                 "module_bytes", "input_bytes"}  # fmt: skip
        if not isinstance(value, dict) or set(value) != names:
            raise BadRequestError(f"limits must be an object with exactly {sorted(names)}")
        return cls(**value)
