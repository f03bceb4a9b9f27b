"""Running a unit: every way a module can misbehave is stopped and named; results repeat.

These run in the test's own process (``compute.sandbox.run_unit``); test_worker.py runs
units the way the agent does, in a worker process.
"""

from __future__ import annotations

import hashlib
import struct
import time

import pytest
from wasmtime import Engine

from compute.limits import Limits
from compute.profile import runtime_profile
from compute.unit import StopReason

from .support import (
    FD_READ,
    FD_WRITE,
    LOTS_OF_FUEL,
    PROC_EXIT,
    RANDOM_GET,
    WASI,
    command,
    run,
    write_out,
)

INFINITE_LOOP = command(body="(loop $forever (br $forever))")


def test_an_infinite_loop_is_stopped_by_its_fuel(engine: Engine) -> None:
    result = run(engine, INFINITE_LOOP, fuel=5_000_000)
    assert result.stop is StopReason.OUT_OF_FUEL
    assert result.exit_status is None
    assert result.fuel_consumed == 5_000_000
    assert "5,000,000" in result.detail


def test_with_fuel_to_spare_an_infinite_loop_is_stopped_by_the_wall_clock(engine: Engine) -> None:
    started = time.monotonic()
    result = run(engine, INFINITE_LOOP, fuel=LOTS_OF_FUEL, limits=Limits(wall_seconds=0.3))
    elapsed = time.monotonic() - started
    assert result.stop is StopReason.WALL_CLOCK
    assert 0.3 <= elapsed < 5
    # wasmtime saves the fuel counter at calls, not at an interruption: it undercounts.
    assert 0 <= result.fuel_consumed < LOTS_OF_FUEL


def memory_bomb(pages_a_step: int) -> bytes:
    """Grows its memory until memory.grow answers -1, then traps (as abort() would)."""
    return command(body=f"""
        (loop $grow
          (br_if $grow (i32.ne (memory.grow (i32.const {pages_a_step})) (i32.const -1))))
        unreachable""")


@pytest.mark.parametrize("pages_a_step", [1, 16])
def test_a_memory_bomb_is_stopped_by_the_memory_cap(engine: Engine, pages_a_step: int) -> None:
    result = run(engine, memory_bomb(pages_a_step), limits=Limits(memory_bytes=4 * 1024 * 1024))
    assert result.stop is StopReason.MEMORY
    assert "cap of 4,194,304" in result.detail
    assert "unreachable" in result.detail  # how the module itself failed


def test_a_module_that_starts_with_more_memory_than_the_cap_does_not_start(engine: Engine) -> None:
    module = command(body="nop", memory_pages=100)  # 6.25 MiB
    result = run(engine, module, limits=Limits(memory_bytes=4 * 1024 * 1024))
    assert result.stop is StopReason.MEMORY
    assert result.fuel_consumed == 0


def test_memory_up_to_the_cap_is_there_to_use(engine: Engine) -> None:
    # 1 page at start + 63 grown = exactly 4 MiB; then touch its last byte.
    module = command(body="""
        (drop (memory.grow (i32.const 63)))
        (i32.store8 (i32.const 4194303) (i32.const 1))""")
    result = run(engine, module, limits=Limits(memory_bytes=4 * 1024 * 1024))
    assert (result.stop, result.exit_status) == (StopReason.EXIT, 0)


FLOOD = command(imports=FD_WRITE, body="""
    (i32.store (i32.const 0) (i32.const 16))    ;; iovec: 1,024 bytes from offset 16
    (i32.store (i32.const 4) (i32.const 1024))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $again))""")


def test_output_over_the_cap_is_stopped(engine: Engine) -> None:
    result = run(engine, FLOOD, limits=Limits(output_bytes=10_240))
    assert result.stop is StopReason.OUTPUT_TOO_LARGE
    assert len(result.output) == 10_240  # ten whole writes; the eleventh would pass the cap
    assert "10,240" in result.detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("(drop (i32.div_u (i32.const 1) (i32.const 0)))", "divide by zero"),
        ("unreachable", "unreachable"),
        ("(drop (i32.load (i32.const 70000)))", "out of bounds"),
    ],
)
def test_a_trap_is_reported_with_its_cause(engine: Engine, body: str, message: str) -> None:
    result = run(engine, command(body=body))
    assert result.stop is StopReason.TRAP
    assert message in result.detail
    assert result.exit_status is None


def test_runaway_recursion_traps_on_the_fixed_stack(engine: Engine) -> None:
    module = command(body="(call $down)", extra="(func $down (call $down))")
    result = run(engine, module, fuel=LOTS_OF_FUEL)
    assert result.stop is StopReason.TRAP
    assert "stack" in result.detail


ECHO = command(imports=FD_READ + FD_WRITE + PROC_EXIT, body="""
    (i32.store (i32.const 0) (i32.const 64))     ;; iovec: up to 4,000 bytes at 64
    (i32.store (i32.const 4) (i32.const 4000))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))  ;; write back what was read
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
    (call $proc_exit (i32.const 7))
    unreachable""")


def test_stdin_is_the_units_input_and_the_exit_status_is_the_programs(engine: Engine) -> None:
    result = run(engine, ECHO, stdin=b"hello, sandbox")
    assert result.output == b"hello, sandbox"
    assert (result.stop, result.exit_status) == (StopReason.EXIT, 7)
    assert result.output_sha256 == hashlib.sha256(b"hello, sandbox").digest()
    assert result.runtime == runtime_profile()


def test_stderr_keeps_only_its_tail(engine: Engine) -> None:
    result = run(engine, ECHO, stdin=bytes(range(200)), limits=Limits(stderr_tail_bytes=16))
    assert result.stderr_tail == bytes(range(184, 200))


def test_returning_from_start_is_exit_status_zero(engine: Engine) -> None:
    result = run(engine, command(body="nop"))
    assert (result.stop, result.exit_status, result.output) == (StopReason.EXIT, 0, b"")


def test_the_same_unit_run_twice_gives_identical_fuel_and_output(engine: Engine) -> None:
    first = run(engine, ECHO, stdin=b"x" * 999, fuel=1_000_000)
    second = run(engine, ECHO, stdin=b"x" * 999, fuel=1_000_000)
    assert first.agreement == second.agreement
    assert 0 < first.fuel_consumed < 1_000_000


RANDOM = command(imports=RANDOM_GET + FD_WRITE, body="""
    (drop (call $random_get (i32.const 100) (i32.const 32)))
    (drop (call $random_get (i32.const 132) (i32.const 8)))""" + write_out(100, 40))


def expected_random(job_id: str, unit_id: str) -> bytes:
    """docs/COMPUTE.md's derivation, written out: call i of length n gets
    SHAKE-256(seed || i as 8 bytes)[:n], seed = SHA-256 of a label and the two ids."""
    job, unit = job_id.encode(), unit_id.encode()
    seed = hashlib.sha256(b"peermark compute random_get v1\0" + struct.pack(">I", len(job)) + job
                          + struct.pack(">I", len(unit)) + unit).digest()  # fmt: skip
    return (hashlib.shake_256(seed + bytes(8)).digest(32)
            + hashlib.shake_256(seed + (1).to_bytes(8, "big")).digest(8))  # fmt: skip


def test_random_get_is_deterministic_per_unit_and_differs_between_units(engine: Engine) -> None:
    first = run(engine, RANDOM, unit_id="unit-1").output
    again = run(engine, RANDOM, unit_id="unit-1").output
    other_unit = run(engine, RANDOM, unit_id="unit-2").output
    other_job = run(engine, RANDOM, unit_id="unit-1", job_id="job-2").output
    assert first == again == expected_random("job-1", "unit-1")
    assert other_unit == expected_random("job-1", "unit-2")
    assert len({first, other_unit, other_job}) == 3


ARGS_AND_ENVIRONMENT = command(
    imports=FD_WRITE
    + f'(import "{WASI}" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))'
    + f'(import "{WASI}" "args_get" (func $args (param i32 i32) (result i32)))'
    + f'(import "{WASI}" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))',
    body="""
    (drop (call $args_sizes (i32.const 100) (i32.const 104)))   ;; argc, buffer size
    (drop (call $args (i32.const 200) (i32.const 300)))         ;; pointers, strings
    (drop (call $env_sizes (i32.const 108) (i32.const 112)))    ;; 0, 0
    """ + write_out(100, 16) + write_out(200, 8) + write_out(300, 10),
)


def test_argv_is_the_jobs_and_the_environment_is_empty(engine: Engine) -> None:
    output = run(engine, ARGS_AND_ENVIRONMENT, args=("job", "--x")).output
    argc, size, env_count, env_size = struct.unpack_from("<4I", output)
    assert (argc, size, env_count, env_size) == (2, 8, 0, 0)
    assert struct.unpack_from("<2I", output, 16) == (300, 304)
    assert output[24:] == b"job\0--x\0" + bytes(2)


def errno_of(slot: int, call: str) -> str:
    """WAT storing ``call``'s errno at 512 + 4 * slot."""
    return f"(i32.store (i32.const {512 + 4 * slot}) {call})"


ERRNO_PROBE = command(
    imports=FD_WRITE + FD_READ
    + f'(import "{WASI}" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))'
    + f'(import "{WASI}" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))'
    + f'(import "{WASI}" "fd_close" (func $close (param i32) (result i32)))'
    + f'(import "{WASI}" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))',
    body="(i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 4))"
    + errno_of(0, "(call $fd_write (i32.const 5) (i32.const 0) (i32.const 1) (i32.const 8))")
    + errno_of(1, "(call $fd_read (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 8))")
    + errno_of(2, "(call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 8))")
    + errno_of(3, "(call $prestat (i32.const 3) (i32.const 8))")
    + errno_of(4, "(call $close (i32.const 9))")
    + errno_of(5, "(call $fdstat (i32.const 1) (i32.const 600))")
    # an iovec at 24 reaching past the memory's end, then far too many iovecs
    + "(i32.store (i32.const 24) (i32.const 65530)) (i32.store (i32.const 28) (i32.const 100))"
    + errno_of(6, "(call $fd_write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 8))")
    + errno_of(7, "(call $fd_write (i32.const 1) (i32.const 0) (i32.const 5000) (i32.const 8))")
    + write_out(512, 32) + write_out(600, 24),
)


def test_anything_but_the_standard_streams_answers_with_a_wasi_error(engine: Engine) -> None:
    output = run(engine, ERRNO_PROBE).output
    errnos = struct.unpack_from("<8I", output)
    # WASI preview 1: BADF 8, SPIPE 69, FAULT 21, INVAL 28; fd_fdstat_get succeeds (0).
    assert errnos == (8, 8, 69, 8, 8, 0, 21, 28)
    filetype, flags, rights_base, rights_inheriting = struct.unpack_from("<BxHxxxxQQ", output, 32)
    # Not a character device (so C's stdio buffers stdout fully); may write (bit 6).
    assert (filetype, flags, rights_base, rights_inheriting) == (0, 0, 1 << 6, 0)


NAN_BITS = command(imports=FD_WRITE, body="""
    (f32.store (i32.const 100) (f32.div (f32.const 0) (f32.const 0)))
    (f64.store (i32.const 104) (f64.sqrt (f64.const -1)))""" + write_out(100, 12))


def test_nans_are_canonical_whatever_the_cpu_produces(engine: Engine) -> None:
    # x86's default NaN has its sign bit set (0xffc00000); WebAssembly's canonical NaN
    # (the spec's "nan:canonical", positive, quiet, zero payload) is what every device gets.
    output = run(engine, NAN_BITS).output
    assert struct.unpack("<IQ", output) == (0x7FC00000, 0x7FF8000000000000)


def many_iovecs_over_all_memory(fd: int) -> bytes:
    """1,024 iovecs, each the whole 1 MiB memory: a gigabyte in one fd_write call."""
    return command(imports=FD_WRITE, memory_pages=16, body=f"""
        (local $i i32)
        (loop $fill
          (i32.store (i32.mul (local.get $i) (i32.const 8)) (i32.const 0))
          (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4))
                     (i32.const 1048576))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $i) (i32.const 1024))))
        (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1024) (i32.const 8192)))""")


def test_a_huge_write_is_refused_without_copying_it(engine: Engine) -> None:
    started = time.monotonic()
    to_stdout = run(engine, many_iovecs_over_all_memory(1))
    to_stderr = run(engine, many_iovecs_over_all_memory(2), limits=Limits(stderr_tail_bytes=64))
    assert time.monotonic() - started < 2  # a gigabyte copied would take far longer
    assert to_stdout.stop is StopReason.OUTPUT_TOO_LARGE
    assert to_stdout.output == b""
    assert (to_stderr.stop, to_stderr.exit_status) == (StopReason.EXIT, 0)
    assert len(to_stderr.stderr_tail) == 64
