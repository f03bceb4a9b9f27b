"""Units run in worker processes, under a parent's hard timeout: a fresh process a unit
(``Sandbox``'s default) and, for what a broken worker does, a kept one too (what the agent
runs; test_worker_reuse.py has the rest of it)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from wasmtime import Engine

from compute.errors import BadRequestError, ModuleRejectedError
from compute.limits import Limits
from compute.profile import runtime_profile
from compute.unit import StopReason, Unit
from compute.worker import Sandbox

from .support import LOTS_OF_FUEL, command, run
from .test_sandbox import ECHO, FLOOD, INFINITE_LOOP, RANDOM, memory_bomb


def unit(unit_id: str = "unit-1", *, stdin: bytes = b"", fuel: int = 10_000_000) -> Unit:
    return Unit(job_id="job-1", unit_id=unit_id, input=stdin, fuel=fuel)


def test_a_unit_runs_in_a_worker_and_agrees_with_an_in_process_run(
    sandbox: Sandbox, engine: Engine
) -> None:
    module = sandbox.prepare(ECHO)
    result = sandbox.run(module, unit(stdin=b"over the pipe"))
    assert (result.stop, result.exit_status) == (StopReason.EXIT, 7)
    assert result.output == b"over the pipe"
    assert result.stderr_tail == b"over the pipe"
    assert result.runtime == runtime_profile()
    in_process = run(engine, ECHO, stdin=b"over the pipe")
    assert result.agreement == in_process.agreement


def test_the_same_unit_run_twice_in_workers_gives_identical_fuel_and_output(
    sandbox: Sandbox,
) -> None:
    module = sandbox.prepare(RANDOM)
    first = sandbox.run(module, unit("unit-9"))
    second = sandbox.run(module, unit("unit-9"))
    other = sandbox.run(module, unit("unit-10"))
    assert first.agreement == second.agreement
    assert first.fuel_consumed > 0
    assert first.output != other.output


def test_a_module_is_compiled_once_and_cached_by_its_hash(sandbox: Sandbox) -> None:
    module = sandbox.prepare(ECHO)
    again = sandbox.prepare(ECHO)
    assert again == module
    assert module.wasm_path.read_bytes() == ECHO
    assert module.compiled_path.exists()
    assert stat.S_IMODE(module.compiled_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sandbox.cache_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("module", "limits", "fuel", "stop"),
    [
        (INFINITE_LOOP, Limits(), 1_000_000, StopReason.OUT_OF_FUEL),
        (INFINITE_LOOP, Limits(wall_seconds=0.3), LOTS_OF_FUEL, StopReason.WALL_CLOCK),
        (memory_bomb(1), Limits(memory_bytes=8 * 1024 * 1024), 10_000_000, StopReason.MEMORY),
        (FLOOD, Limits(output_bytes=4096), 10_000_000, StopReason.OUTPUT_TOO_LARGE),
        (command(body="unreachable"), Limits(), 1000, StopReason.TRAP),
    ],
    ids=["fuel", "wall-clock", "memory", "output", "trap"],
)
def test_a_worker_reports_each_stop_reason(
    tmp_path: Path, module: bytes, limits: Limits, fuel: int, stop: StopReason
) -> None:
    sandbox = Sandbox(tmp_path / "cache", limits=limits)
    result = sandbox.run(sandbox.prepare(module), unit(fuel=fuel))
    assert result.stop is stop, result.detail
    assert result.exit_status is None


def test_a_rejected_module_is_an_error_before_any_unit(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRejectedError, match="not a WebAssembly binary"):
        sandbox.prepare(b"#!/bin/sh\necho hello\n")
    with pytest.raises(ModuleRejectedError, match="over the limit"):
        sandbox.prepare(b"\0asm\x01\0\0\0" + bytes(sandbox.limits.module_bytes))


BOTH = pytest.mark.parametrize("reuse", [False, True], ids=["fresh", "kept"])


@BOTH
def test_a_worker_that_dies_gives_a_worker_failed_result(tmp_path: Path, reuse: bool) -> None:
    prepared = Sandbox(tmp_path / "cache").prepare(ECHO)
    crashing = tmp_path / "crashing-python"
    crashing.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nkill -SEGV $$\n")
    crashing.chmod(0o700)
    with Sandbox(tmp_path / "cache", python=str(crashing), reuse_workers=reuse) as sandbox:
        result = sandbox.run(prepared, unit())
        assert sandbox.processes == []
    assert result.stop is StopReason.WORKER_FAILED
    assert "Segmentation fault" in result.detail
    assert (result.output, result.fuel_consumed) == (b"", 0)


@BOTH
def test_a_worker_that_hangs_is_killed_by_the_parent(tmp_path: Path, reuse: bool) -> None:
    prepared = Sandbox(tmp_path / "cache").prepare(ECHO)
    hanging = tmp_path / "hanging-python"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o700)
    sandbox = Sandbox(tmp_path / "cache", python=str(hanging), grace_seconds=0.3,
                      limits=Limits(wall_seconds=0.2), reuse_workers=reuse)  # fmt: skip
    started = time.monotonic()
    result = sandbox.run(prepared, unit(stdin=b"x" * 1_000_000))  # more than a pipe holds
    assert time.monotonic() - started < 5
    assert result.stop is StopReason.WALL_CLOCK
    assert "killed" in result.detail
    assert sandbox.processes == []


@BOTH
def test_a_worker_that_answers_out_of_protocol_gives_a_worker_failed_result(
    tmp_path: Path, reuse: bool
) -> None:
    prepared = Sandbox(tmp_path / "cache").prepare(ECHO)
    chatty = tmp_path / "chatty-python"
    # a fresh worker's input ends after its request; a kept worker's does not, and the
    # answer is known to be wrong at once, without waiting for the worker to end
    reads, then = ("cat > /dev/null", "") if not reuse else ("head -n 1 > /dev/null", "sleep 30")
    chatty.write_text(f"#!/bin/sh\n{reads}\necho 'hello from a stray print'\n{then}\n")
    chatty.chmod(0o700)
    started = time.monotonic()
    with Sandbox(tmp_path / "cache", python=str(chatty), reuse_workers=reuse) as sandbox:
        result = sandbox.run(prepared, unit())
    assert time.monotonic() - started < 5
    assert result.stop is StopReason.WORKER_FAILED
    assert "protocol" in result.detail


def test_a_cache_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(BadRequestError, match="writable by no one else"):
        Sandbox(shared)


def test_an_input_over_the_limit_is_refused_before_a_worker_starts(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "cache", limits=Limits(input_bytes=10))
    prepared = sandbox.prepare(ECHO)
    with pytest.raises(BadRequestError, match="over the limit"):
        sandbox.run(prepared, unit(stdin=b"x" * 11))


@pytest.mark.parametrize(
    "fields",
    [
        {"job_id": ""},
        {"job_id": "with space"},
        {"unit_id": "x" * 129},
        {"fuel": 0},
        {"fuel": True},
        {"fuel": 2**63},
        {"input": "text"},
        {"args": ["job"]},
        {"args": ("a\0b",)},
    ],
)
def test_a_bad_unit_is_refused_clearly(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"job_id": "job-1", "unit_id": "unit-1", "input": b"",
                                 "fuel": 1000}  # fmt: skip
    values.update(fields)
    with pytest.raises(BadRequestError):
        Unit(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"memory_bytes": 1000},
        {"memory_bytes": 5 * 2**30},
        {"wall_seconds": 0},
        {"wall_seconds": True},
        {"output_bytes": -1},
        {"module_bytes": 2**40},
    ],
)
def test_bad_limits_are_refused_clearly(fields: dict[str, object]) -> None:
    with pytest.raises(BadRequestError):
        Limits(**fields)  # type: ignore[arg-type]


@BOTH
def test_the_worker_gets_none_of_the_agents_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reuse: bool
) -> None:
    monkeypatch.setenv("PEERMARK_SECRET_FOR_TEST", "do-not-leak")
    spy = tmp_path / "spy-python"
    record = tmp_path / "environment.txt"
    spy.write_text(f"#!/bin/sh\nenv > {record}\nexit 1\n")
    spy.chmod(0o700)
    prepared = Sandbox(tmp_path / "cache").prepare(ECHO)
    Sandbox(tmp_path / "cache", python=str(spy), reuse_workers=reuse).run(prepared, unit())
    seen = record.read_text()
    assert "do-not-leak" not in seen
    assert "PYTHONPATH=" in seen
    assert os.environ["PEERMARK_SECRET_FOR_TEST"] == "do-not-leak"


@pytest.mark.parametrize("reuse", [False, True])
def test_a_cache_folder_given_as_a_relative_path_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reuse: bool
) -> None:
    # As the agent's `--data-dir carol-agent` gives it: the worker runs in the folder.
    monkeypatch.chdir(tmp_path)
    with Sandbox(Path("agent-home") / "sandbox", reuse_workers=reuse) as relative:
        module = relative.prepare(ECHO)
        result = relative.run(module, Unit(job_id="j", unit_id="u", input=b"hello", fuel=10**6))
    assert (result.stop, result.output) == (StopReason.EXIT, b"hello")
