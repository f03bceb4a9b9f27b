"""Shared helpers for the compute tests: small WebAssembly programs written in WAT.

wasmtime compiles WAT text (``wat2wasm``), so each behaviour the sandbox must stop or
allow is a few lines here rather than a binary checked in.
"""

from __future__ import annotations

from wasmtime import Engine, wat2wasm

from compute.limits import Limits
from compute.module_check import check_module
from compute.sandbox import run_unit
from compute.unit import Unit, UnitResult

WASI = "wasi_snapshot_preview1"
FD_WRITE = f'(import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))'
FD_READ = f'(import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))'
PROC_EXIT = f'(import "{WASI}" "proc_exit" (func $proc_exit (param i32)))'
RANDOM_GET = f'(import "{WASI}" "random_get" (func $random_get (param i32 i32) (result i32)))'
LOTS_OF_FUEL = 2**62


def wasm(wat: str) -> bytes:
    return bytes(wat2wasm(wat))


def command(*, imports: str = "", body: str = "", memory_pages: int = 1, extra: str = "") -> bytes:
    """A WASI command module: the imports, a memory, ``_start`` running ``body``."""
    return wasm(f"""(module {imports}
        (memory (export "memory") {memory_pages})
        {extra}
        (func (export "_start") {body}))""")


def write_out(pointer: int, length: int) -> str:
    """WAT that writes ``length`` bytes at ``pointer`` to stdout (iovec kept at 0)."""
    return f"""
        (i32.store (i32.const 0) (i32.const {pointer}))
        (i32.store (i32.const 4) (i32.const {length}))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))"""


def run(
    engine: Engine,
    module: bytes,
    *,
    unit_id: str = "unit-1",
    job_id: str = "job-1",
    stdin: bytes = b"",
    fuel: int = 10_000_000,
    args: tuple[str, ...] = ("job",),
    limits: Limits | None = None,
) -> UnitResult:
    """Check and run ``module`` in this process (the worker's tests cover the process)."""
    limits = limits or Limits(wall_seconds=10.0)
    compiled = check_module(engine, module, max_bytes=limits.module_bytes)
    unit = Unit(job_id=job_id, unit_id=unit_id, input=stdin, fuel=fuel, args=args)
    return run_unit(engine, compiled, unit, limits)
