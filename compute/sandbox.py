"""Running one work unit in wasmtime, metered and bounded, deterministically.

This module runs a unit in the CURRENT process; ``compute.worker`` is what the agent
calls, and it runs each unit through here in a worker process of its own.

The engine (``make_engine``) is configured so that a unit computes the same output,
exit status and fuel on every machine:

* **fuel metering** (``consume_fuel``): wasmtime charges fuel per WebAssembly
  instruction at compile time, independent of the host CPU, so fuel is both the
  meter customers pay by and a deterministic cap;
* **NaN guards, not Cranelift's NaN canonicalisation**: WebAssembly float arithmetic
  is IEEE-exact except for the bit patterns of NaNs, which differ between CPUs. Those
  bits are canonicalised where a program could observe them (stores, reinterprets,
  ``copysign``'s sign) by guards that ``module_check.check_module`` adds to the code
  (``compute.nan_guard``), so the engine leaves ``cranelift_nan_canonicalization`` off
  (it would check after every float operation: it halved the demo's speed). Hence
  **a module must only be compiled for this engine by ``check_module``**;
* **no threads, no shared memory** (scheduling would decide results), **no SIMD** (its
  lanes expose NaN bits the guards do not cover; relaxed SIMD's results are defined per
  CPU), no tail calls or wide arithmetic (outside the guards' decoder), no 64-bit or
  multiple memories, no GC, exceptions, stack switching or component model (none is
  needed; each is surface);
* **a fixed WebAssembly stack** (``max_wasm_stack``, 1 MiB) so that a deep recursion
  is refused alike everywhere, within the limits of native frame sizes (see
  docs/COMPUTE.md);
* **epoch interruption**: a timer thread bumps the engine's epoch once the wall-clock
  cap has passed and the running code traps at its next check. This is the only
  non-deterministic stop, and it is reported as such (``wall-clock``).

The store caps linear memory (``Limits.memory_bytes``: a ``memory.grow`` past it
answers -1, as a full machine would), tables, instances and memories; the WASI
surface (``compute.wasi``) caps output and gives the unit its input, argv and its
deterministic random stream, and nothing else.
"""

from __future__ import annotations

import re
import threading

from wasmtime import (
    Config,
    Engine,
    Func,
    Linker,
    Memory,
    MemoryType,
    Module,
    Store,
    Trap,
    TrapCode,
    WasmtimeError,
)

from .limits import WASM_PAGE, Limits
from .profile import runtime_profile
from .unit import StopReason, Unit, UnitResult, check_input
from .wasi import GuestIO, OutputTooLarge, ProcExit, RandomStream, random_seed

#: the WebAssembly stack every unit gets, in bytes
WASM_STACK_BYTES = 1024 * 1024
#: tables and their elements a unit may have (clang's modules have one small table)
MAX_TABLES = 4
MAX_TABLE_ELEMENTS = 1_000_000
_DETAIL_CHARS = 500
_TRAP_CAUSE = re.compile(r"wasm trap: .*")
#: a unit that failed with at least this share of its memory cap in use was stopped by it
MEMORY_NEAR_CAP = 3 / 4


def make_engine() -> Engine:
    """An engine with the deterministic, metered settings described above.

    Compile modules for it only with ``module_check.check_module`` (which adds the NaN
    guards), or load what that compiled (the worker's cache)."""
    config = Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    # NaNs are canonicalised by the guards check_module adds, where they can be observed
    config.cranelift_nan_canonicalization = False
    config.cranelift_opt_level = "speed"
    config.wasm_threads = False
    config.shared_memory = False
    config.wasm_simd = False
    config.wasm_relaxed_simd = False
    config.wasm_relaxed_simd_deterministic = True
    config.wasm_tail_call = False
    config.wasm_wide_arithmetic = False
    config.wasm_memory64 = False
    config.wasm_multi_memory = False
    config.wasm_gc = False
    config.wasm_function_references = False
    config.wasm_exceptions = False
    config.wasm_stack_switching = False
    config.wasm_component_model = False
    config.max_wasm_stack = WASM_STACK_BYTES
    return Engine(config)


def _cause(text: str) -> str:
    """A trap's cause without its backtrace, shortened: for ``detail``."""
    found = _TRAP_CAUSE.search(text)
    if found:
        return found.group(0).strip()[:_DETAIL_CHARS]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "trap")[:_DETAIL_CHARS]


def _memory_pages_at_start(module: Module) -> int:
    for item in module.exports:
        if isinstance(item.type, MemoryType):
            return item.type.limits.min
    return 0


def run_unit(
    engine: Engine, module: Module, unit: Unit, limits: Limits, *, runtime: str | None = None
) -> UnitResult:
    """Run ``unit`` with ``module`` (compiled for ``engine`` by ``check_module``, which
    added its NaN guards: a module compiled otherwise is not deterministic).

    One unit at a time per engine: the wall-clock timer bumps the engine's epoch,
    which would interrupt any other unit running on it too. ``runtime`` is the
    profile to report (``runtime_profile()`` when not given; a worker is handed it).
    """
    check_input(unit, limits)
    profile = runtime if runtime is not None else runtime_profile()
    guest = GuestIO(
        stdin=unit.input,
        args=unit.args,
        random=RandomStream(random_seed(unit.job_id, unit.unit_id)),
        output_cap=limits.output_bytes,
        stderr_tail_cap=limits.stderr_tail_bytes,
    )

    def finish(stop: StopReason, exit_status: int | None, fuel: int, detail: str) -> UnitResult:
        return UnitResult(
            job_id=unit.job_id,
            unit_id=unit.unit_id,
            stop=stop,
            exit_status=exit_status,
            output=bytes(guest.output),
            stderr_tail=bytes(guest.stderr_tail),
            fuel_consumed=fuel,
            detail=detail,
            runtime=profile,
        )

    initial_bytes = _memory_pages_at_start(module) * WASM_PAGE
    if initial_bytes > limits.memory_bytes:
        return finish(
            StopReason.MEMORY, None, 0,
            f"the module starts with {initial_bytes:,} bytes of memory, over the cap of "
            f"{limits.memory_bytes:,}",
        )  # fmt: skip

    store = Store(engine)
    store.set_limits(
        memory_size=limits.memory_bytes,
        table_elements=MAX_TABLE_ELEMENTS,
        instances=1,
        tables=MAX_TABLES,
        memories=1,
    )
    store.set_fuel(unit.fuel)
    store.set_epoch_deadline(1)
    linker = Linker(engine)
    guest.define(linker)

    timer = threading.Timer(limits.wall_seconds, engine.increment_epoch)
    timer.daemon = True
    memory: Memory | None = None
    stop, exit_status, detail = StopReason.EXIT, None, ""
    timer.start()
    try:
        instance = linker.instantiate(store, module)
        exports = instance.exports(store)
        found = exports.get("memory")
        memory = found if isinstance(found, Memory) else None
        start = exports["_start"]
        if not isinstance(start, Func):
            raise WasmtimeError("_start is not a function")  # check_module refuses such modules
        start(store)
        exit_status = 0
    except ProcExit as exited:
        exit_status = exited.code
    except OutputTooLarge as error:
        stop, detail = StopReason.OUTPUT_TOO_LARGE, str(error)
    except Trap as trap:
        code = trap.trap_code
        if code is TrapCode.OUT_OF_FUEL:
            stop, detail = StopReason.OUT_OF_FUEL, f"all {unit.fuel:,} units of fuel used"
        elif code is TrapCode.INTERRUPT:
            stop = StopReason.WALL_CLOCK
            detail = f"interrupted after {limits.wall_seconds:g} s of wall-clock time"
        else:
            stop, detail = StopReason.TRAP, _cause(trap.message)
    except WasmtimeError as error:
        stop, detail = StopReason.TRAP, _cause(str(error))
    finally:
        timer.cancel()
    fuel = unit.fuel - store.get_fuel()

    # A refused memory.grow is not a trap: the module sees -1 and fails its own way
    # (malloc returns NULL, then abort() traps or main returns an error), and wasmtime's
    # C API cannot make it trap instead. So a unit that failed with most of its memory
    # cap in use is reported as stopped by it; its own failure stays in ``detail``.
    failed = stop is StopReason.TRAP or (stop is StopReason.EXIT and exit_status != 0)
    if failed and memory is not None:
        size = memory.data_len(store)
        if size >= MEMORY_NEAR_CAP * limits.memory_bytes:
            how = detail or f"exit status {exit_status}"
            stop, exit_status = StopReason.MEMORY, None
            detail = (f"failed with {size:,} bytes of memory in use, near its cap of "
                      f"{limits.memory_bytes:,} ({how})")  # fmt: skip
    return finish(stop, exit_status if stop is StopReason.EXIT else None, fuel, detail)

