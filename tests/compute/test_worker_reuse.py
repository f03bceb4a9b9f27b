"""Kept workers (``Sandbox(reuse_workers=True)``, what the agent runs): one process serves
many units of a module, each from a fresh engine, store and instance, and gives the same
results, bit for bit, as a fresh process a unit. A worker is replaced after any unclean
stop, after its share of units, when the module changes and when the parent kills it."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wasmtime import Engine

from compute.demo import RENDER_WASM, Tile, tile_input, tiles
from compute.limits import Limits
from compute.unit import StopReason, Unit, UnitResult
from compute.worker import PreparedModule, Sandbox

from .support import FD_WRITE, LOTS_OF_FUEL, command, run, write_out
from .test_sandbox import (
    ARGS_AND_ENVIRONMENT,
    ECHO,
    ERRNO_PROBE,
    FLOOD,
    INFINITE_LOOP,
    NAN_BITS,
    RANDOM,
    memory_bomb,
)

#: reads its mutable global, a word of memory and the memory's size, writes the three
#: out, then changes all three: a unit that saw another's state would print other numbers
STATEFUL = command(
    imports=FD_WRITE,
    extra="(global $counter (mut i32) (i32.const 7))",
    body=f"""
        (i32.store (i32.const 100) (global.get $counter))
        (i32.store (i32.const 104) (i32.load (i32.const 200)))
        (i32.store (i32.const 108) (memory.size))
        {write_out(100, 12)}
        (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
        (i32.store (i32.const 200) (i32.const 0xdeadbeef))
        (drop (memory.grow (i32.const 3)))""",
)
INITIAL_STATE = struct.pack("<III", 7, 0, 1)


def unit(unit_id: str = "unit-1", *, stdin: bytes = b"", fuel: int = 10_000_000) -> Unit:
    return Unit(job_id="job-1", unit_id=unit_id, input=stdin, fuel=fuel)


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "cache", reuse_workers=True) as sandbox:
        yield sandbox


def pids(sandbox: Sandbox) -> set[int]:
    return {process.pid for process in sandbox.processes}


def everything(result: UnitResult) -> tuple[object, ...]:
    """All a result says, not only what devices compare."""
    return (*result.agreement, result.output, result.stderr_tail, result.detail)


def test_one_worker_serves_many_units(kept: Sandbox) -> None:
    module = kept.prepare(ECHO)
    seen = []
    for n in range(5):
        result = kept.run(module, unit(f"unit-{n}", stdin=f"unit {n}".encode()))
        assert (result.stop, result.exit_status, result.output) == (
            StopReason.EXIT, 7, f"unit {n}".encode())  # fmt: skip
        seen.append(pids(kept))
    assert len(seen[0]) == 1
    assert all(s == seen[0] for s in seen)


def test_nothing_of_a_unit_s_globals_or_memory_reaches_the_next(kept: Sandbox) -> None:
    module = kept.prepare(STATEFUL)
    results = [kept.run(module, unit(f"unit-{n}")) for n in range(3)]
    served_by = pids(kept)
    again = kept.run(module, unit("unit-0"))
    assert pids(kept) == served_by  # the same process served them all
    assert [r.output for r in results] == [INITIAL_STATE] * 3
    assert len({r.fuel_consumed for r in results}) == 1
    assert everything(again) == everything(results[0])


def test_the_random_stream_is_the_unit_s_own_in_a_kept_worker(
    kept: Sandbox, engine: Engine
) -> None:
    module = kept.prepare(RANDOM)
    first, other, first_again = (kept.run(module, unit(u)) for u in ("unit-9", "unit-10", "unit-9"))
    assert len(pids(kept)) == 1
    assert first.output != other.output
    assert everything(first) == everything(first_again)
    assert first.agreement == run(engine, RANDOM, unit_id="unit-9").agreement


def test_a_unit_after_one_that_ran_out_of_fuel_has_all_of_its_own(kept: Sandbox) -> None:
    loop, echo = kept.prepare(INFINITE_LOOP), kept.prepare(ECHO)
    assert kept.run(loop, unit(fuel=1_000_000)).stop is StopReason.OUT_OF_FUEL
    served_by = pids(kept)
    again = kept.run(loop, unit("unit-2", fuel=3_000_000))
    assert (again.stop, again.fuel_consumed) == (StopReason.OUT_OF_FUEL, 3_000_000)
    assert pids(kept) == served_by  # out of fuel is a clean stop: the worker served on
    assert kept.run(echo, unit(stdin=b"x")).output == b"x"


MISBEHAVING = [
    pytest.param(INFINITE_LOOP, Limits(), 1_000_000, id="out-of-fuel"),
    pytest.param(memory_bomb(1), Limits(memory_bytes=8 * 2**20), 10_000_000, id="memory"),
    pytest.param(memory_bomb(16), Limits(memory_bytes=4 * 2**20), 10_000_000, id="memory-16"),
    pytest.param(FLOOD, Limits(output_bytes=4096), 10_000_000, id="output"),
    pytest.param(command(body="unreachable"), Limits(), 1000, id="trap"),
    pytest.param(command(body="(drop (i32.div_u (i32.const 1) (i32.const 0)))"), Limits(),
                 1000, id="divide-by-zero"),
    pytest.param(ECHO, Limits(), 10_000_000, id="echo"),
    pytest.param(RANDOM, Limits(), 10_000_000, id="random"),
    pytest.param(NAN_BITS, Limits(), 10_000_000, id="nan-bits"),
    pytest.param(ARGS_AND_ENVIRONMENT, Limits(), 10_000_000, id="args"),
    pytest.param(ERRNO_PROBE, Limits(), 10_000_000, id="errno"),
    pytest.param(STATEFUL, Limits(), 10_000_000, id="stateful"),
]


@pytest.mark.parametrize(("module", "limits", "fuel"), MISBEHAVING)
def test_a_kept_worker_gives_the_fresh_worker_s_result_bit_for_bit(
    tmp_path: Path, module: bytes, limits: Limits, fuel: int
) -> None:
    fresh = Sandbox(tmp_path / "cache", limits=limits)
    prepared = fresh.prepare(module)
    expected = fresh.run(prepared, unit(stdin=b"some input", fuel=fuel))
    with Sandbox(tmp_path / "cache", limits=limits, reuse_workers=True) as kept:
        # twice: the first in a new worker, the second in a kept one (if the first was clean)
        for _ in range(2):
            assert everything(kept.run(prepared, unit(stdin=b"some input", fuel=fuel))) == (
                everything(expected)
            )


def test_demo_tiles_in_a_kept_worker_are_the_fresh_workers_bit_for_bit(
    tmp_path: Path, engine: Engine
) -> None:
    width, height, samples = 48, 32, 2
    cut = tiles(width, height, 16, 16)
    fresh = Sandbox(tmp_path / "cache")
    prepared = fresh.prepare(RENDER_WASM.read_bytes())

    def tile_unit(index: int, tile: Tile) -> Unit:
        return Unit(job_id="demo", unit_id=f"tile-{index}", fuel=2_000_000_000,
                    input=tile_input(width, height, tile, samples=samples))  # fmt: skip

    expected = [fresh.run(prepared, tile_unit(n, t)) for n, t in enumerate(cut)]
    with Sandbox(tmp_path / "cache", reuse_workers=True) as kept:
        got = [kept.run(prepared, tile_unit(n, t)) for n, t in enumerate(cut)]
        assert len(pids(kept)) == 1
    assert all(r.stop is StopReason.EXIT and r.exit_status == 0 for r in expected)
    assert [everything(r) for r in got] == [everything(r) for r in expected]
    assert len({r.output for r in got}) > 1  # the tiles differ: the test can tell them apart


@pytest.mark.parametrize(
    ("module", "limits", "fuel", "stop"),
    [
        (INFINITE_LOOP, Limits(wall_seconds=0.3), LOTS_OF_FUEL, StopReason.WALL_CLOCK),
        (memory_bomb(1), Limits(memory_bytes=8 * 2**20), 10_000_000, StopReason.MEMORY),
        (FLOOD, Limits(output_bytes=4096), 10_000_000, StopReason.OUTPUT_TOO_LARGE),
        (command(body="unreachable"), Limits(), 1000, StopReason.TRAP),
    ],
    ids=["wall-clock", "memory", "output", "trap"],
)
def test_a_worker_is_replaced_after_an_unclean_stop(
    tmp_path: Path, module: bytes, limits: Limits, fuel: int, stop: StopReason
) -> None:
    with Sandbox(tmp_path / "cache", limits=limits, reuse_workers=True) as kept:
        prepared = kept.prepare(module)
        assert kept.run(prepared, unit(fuel=fuel)).stop is stop
        assert kept.processes == []  # ended, not kept
        assert kept.run(prepared, unit(fuel=fuel)).stop is stop  # a new worker, same stop


def test_a_worker_is_replaced_after_its_share_of_units(tmp_path: Path) -> None:
    with Sandbox(tmp_path / "cache", reuse_workers=True, units_per_worker=3) as kept:
        module = kept.prepare(ECHO)
        served_by = []
        for n in range(7):
            assert kept.run(module, unit(f"unit-{n}", stdin=b"x")).output == b"x"
            served_by.append(frozenset(pids(kept)))
        # units 1-2 in the first worker, which ends after the third; and so on
        assert served_by[:3] == [served_by[0], served_by[0], frozenset()]
        assert served_by[3:6] == [served_by[3], served_by[3], frozenset()]
        assert served_by[0] != served_by[3]


def test_a_worker_serves_one_module_and_makes_way_for_another(kept: Sandbox) -> None:
    echo, random = kept.prepare(ECHO), kept.prepare(RANDOM)
    kept.run(echo, unit(stdin=b"x"))
    echo_worker = pids(kept)
    assert kept.run(random, unit("unit-9")).stop is StopReason.EXIT
    assert len(pids(kept)) == 1
    assert pids(kept) != echo_worker  # the echo worker ended
    assert kept.run(echo, unit(stdin=b"y")).output == b"y"


def test_a_kept_worker_that_died_while_idle_is_replaced(kept: Sandbox) -> None:
    module = kept.prepare(ECHO)
    kept.run(module, unit(stdin=b"x"))
    (process,) = kept.processes
    process.kill()
    process.wait()
    result = kept.run(module, unit(stdin=b"after"))
    assert (result.stop, result.output) == (StopReason.EXIT, b"after")
    assert process.pid not in pids(kept)


def test_killing_the_workers_stops_a_unit_in_flight_and_any_later(kept: Sandbox) -> None:
    slow = Sandbox(kept.cache_dir, limits=Limits(wall_seconds=30), reuse_workers=True)
    module = slow.prepare(INFINITE_LOOP)
    results: list[UnitResult] = []
    thread = threading.Thread(target=lambda: results.append(
        slow.run(module, unit(fuel=LOTS_OF_FUEL))))  # fmt: skip
    started = time.monotonic()
    thread.start()
    while not slow.processes and time.monotonic() - started < 10:
        time.sleep(0.02)
    workers = slow.processes
    time.sleep(0.3)  # well into the unit
    slow.kill_workers()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10
    assert results[0].stop is StopReason.WORKER_FAILED
    assert all(w.poll() is not None for w in workers)
    assert slow.processes == []
    after = slow.run(module, unit(fuel=1000))
    assert after.stop is StopReason.WORKER_FAILED
    assert "closed" in after.detail


def test_threads_sharing_a_sandbox_get_a_worker_each(kept: Sandbox) -> None:
    module = kept.prepare(RANDOM)
    expected = {f"unit-{n}": kept.run(module, unit(f"unit-{n}")).output for n in range(8)}
    results: dict[str, UnitResult] = {}
    barrier = threading.Barrier(2)

    def work(ids: list[str]) -> None:
        barrier.wait()
        for unit_id in ids:
            results[unit_id] = kept.run(module, unit(unit_id))

    threads = [threading.Thread(target=work, args=([f"unit-{n}" for n in range(k, 8, 2)],))
               for k in (0, 1)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert {u: r.output for u, r in results.items()} == expected
    assert 1 <= len(kept.processes) <= 2


def test_closing_ends_the_kept_workers(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "cache", reuse_workers=True)
    module: PreparedModule = sandbox.prepare(ECHO)
    sandbox.run(module, unit())
    (process,) = sandbox.processes
    sandbox.close()
    assert process.returncode == 0  # it ended at the end of its input, not killed
    assert sandbox.processes == []
