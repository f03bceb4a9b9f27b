"""A module the sandbox may not run is refused before any of it runs, saying why."""

from __future__ import annotations

import pytest
from wasmtime import Engine

from compute.demo import RENDER_WASM
from compute.errors import ModuleRejectedError
from compute.module_check import check_module
from compute.wasi import ALLOWED
from compute.worker import Sandbox

from .support import FD_WRITE, WASI, command, wasm

MAX = 8 * 1024 * 1024


def refusal(engine: Engine, module: object, *, max_bytes: int = MAX) -> str:
    with pytest.raises(ModuleRejectedError) as caught:
        check_module(engine, module, max_bytes=max_bytes)
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "signature", "because"),
    [
        ("clock_time_get", "(param i32 i64 i32) (result i32)", "no clock"),
        ("clock_res_get", "(param i32 i32) (result i32)", "no clock"),
        ("path_open", "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
         "no file system"),
        ("sock_send", "(param i32 i32 i32 i32 i32) (result i32)", "no network"),
        ("poll_oneoff", "(param i32 i32 i32 i32) (result i32)", "nothing to wait for"),
        ("fd_readdir", "(param i32 i32 i32 i64 i32) (result i32)", "no files"),
    ],
)  # fmt: skip
def test_a_forbidden_wasi_import_is_refused_by_name(
    engine: Engine, name: str, signature: str, because: str
) -> None:
    module = command(imports=f'(import "{WASI}" "{name}" (func {signature}))')
    message = refusal(engine, module)
    assert f"{WASI}.{name}" in message
    assert because in message


def test_an_import_from_outside_wasi_is_refused(engine: Engine) -> None:
    module = command(imports='(import "env" "now" (func (result i64)))')
    assert "env.now" in refusal(engine, module)


def test_an_imported_memory_is_refused(engine: Engine) -> None:
    module = wasm('(module (import "env" "memory" (memory 1)) (func (export "_start")))')
    assert "env.memory" in refusal(engine, module)


def test_an_allowed_name_with_another_type_is_refused(engine: Engine) -> None:
    module = command(imports=f'(import "{WASI}" "fd_write" (func (param i32) (result i32)))')
    message = refusal(engine, module)
    assert "fd_write" in message
    assert "type" in message


def test_an_allowed_name_imported_as_a_global_is_refused(engine: Engine) -> None:
    module = command(imports=f'(import "{WASI}" "random_get" (global i32))')
    assert "random_get" in refusal(engine, module)


def test_a_module_must_be_a_wasi_command(engine: Engine) -> None:
    no_start = wasm('(module (memory (export "memory") 1) (func (export "main")))')
    assert "_start" in refusal(engine, no_start)
    start_with_params = wasm('(module (memory (export "memory") 1) '
                             '(func (export "_start") (param i32)))')  # fmt: skip
    assert "_start" in refusal(engine, start_with_params)
    no_memory = wasm('(module (func (export "_start")))')
    assert "memory" in refusal(engine, no_memory)


@pytest.mark.parametrize(
    ("module", "because"),
    [
        (b"", "not a WebAssembly binary"),
        (b"\x7fELF\x02\x01\x01" + bytes(60), "not a WebAssembly binary"),
        (b'(module (func (export "_start")))', "not a WebAssembly binary"),  # text, not binary
        (b"\0asm\x0d\0\x01\0", "not a WebAssembly 1.0 core module"),  # a component's header
        (b"\0asm\x01\0\0\0\x01\xff", "not a valid WebAssembly module"),  # truncated section
        ("a string", "bytes"),
    ],
)
def test_what_is_not_a_webassembly_module_is_refused(
    engine: Engine, module: object, because: str
) -> None:
    assert because in refusal(engine, module)


def test_a_module_over_the_size_limit_is_refused(engine: Engine) -> None:
    module = command(body="nop")
    assert "over the limit" in refusal(engine, module, max_bytes=len(module) - 1)
    check_module(engine, module, max_bytes=len(module))


@pytest.mark.parametrize(
    "feature",
    [
        '(memory (export "memory") 1 1 shared)',  # threads
        '(memory (export "memory") i64 1)',  # 64-bit memory
    ],
)
def test_threads_and_64_bit_memories_are_not_webassembly_here(engine: Engine, feature: str) -> None:
    module = wasm(f'(module {feature} (func (export "_start")))')
    assert "not a valid WebAssembly module" in refusal(engine, module)


def test_relaxed_simd_is_not_webassembly_here(engine: Engine) -> None:
    module = wasm("""(module (memory (export "memory") 1)
        (func (export "_start")
          (drop (f32x4.relaxed_madd (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)
                                    (v128.const i32x4 0 0 0 0)))))""")
    assert "not a valid WebAssembly module" in refusal(engine, module)


def test_the_demo_renderer_imports_only_what_the_sandbox_allows(engine: Engine) -> None:
    module = check_module(engine, RENDER_WASM.read_bytes(), max_bytes=MAX)
    imported = {(item.module, item.name) for item in module.imports}
    assert imported <= {(WASI, name) for name in ALLOWED}
    # What wasi-libc's start-up and stdio need (docs/COMPUTE.md says so).
    wasi_libc_stdio = {"fd_close", "fd_fdstat_get", "fd_read", "fd_seek", "fd_write", "proc_exit"}
    assert imported == {(WASI, name) for name in wasi_libc_stdio}


def test_the_sandbox_refuses_before_compiling_anything_to_its_cache(sandbox: Sandbox) -> None:
    module = command(imports=f'(import "{WASI}" "clock_time_get" '
                             '(func (param i32 i64 i32) (result i32)))\n' + FD_WRITE,
                     extra="(start $boom) (func $boom unreachable)")  # fmt: skip
    before = set(sandbox.cache_dir.iterdir())
    with pytest.raises(ModuleRejectedError, match="clock_time_get"):
        sandbox.prepare(module)
    assert set(sandbox.cache_dir.iterdir()) == before  # nothing compiled, nothing kept
