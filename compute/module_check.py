"""Checking a job's module before anything of it runs, and compiling it with its NaN guards.

A module is accepted when it is a WebAssembly binary (not text, not a component)
within the size limit, wasmtime parses and validates it under the sandbox's engine
(whose settings already refuse threads, shared memory, 64-bit memories and SIMD), our
own strict decoder reads its code and adds a NaN guard before each instruction that
could observe a NaN's bits (``compute.nan_guard``; it refuses any instruction outside
the supported set), wasmtime compiles the guarded module, it imports only functions of
the sandbox's WASI surface with exactly their types (``wasi.ALLOWED``), and it is a WASI
command: it exports ``_start`` (no parameters, no results) and its memory as
``memory``. Each refusal is a ``ModuleRejectedError`` that names what is wrong, so a
customer can fix the build.

``check_module`` is the only way a module may be compiled for the sandbox's engine:
the engine does not canonicalise NaNs itself (``sandbox.make_engine``), so code compiled
without the guards would not be deterministic. The module's identity stays the SHA-256
of the bytes the customer submitted; the guarded module is what gets compiled and cached.
"""

from __future__ import annotations

from wasmtime import Engine, FuncType, MemoryType, Module, WasmtimeError

from .errors import ModuleRejectedError
from .nan_guard import guard_nans
from .wasi import ALLOWED, REFUSED_BECAUSE, WASI_MODULE

WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"


def _type_names(types: list[object]) -> tuple[str, ...]:
    return tuple(str(t) for t in types)


def _first_line(error: WasmtimeError) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else "invalid"
    if "SIMD support is not enabled" in line:
        line += "; the sandbox does not run SIMD (v128): build without -msimd128"
    return line


def _refusal(module: str, name: str) -> str:
    where = f"{module}.{name}"
    if module != WASI_MODULE:
        return f"it imports {where}: only {WASI_MODULE} functions may be imported"
    reason = REFUSED_BECAUSE.get(name)
    if reason is None and name.startswith("path_"):
        reason = "there is no file system"
    if reason is None and name.startswith("fd_"):
        reason = "only the standard streams exist, no files"
    allowed = ", ".join(sorted(ALLOWED))
    return f"it imports {where}, which the sandbox does not provide ({reason or 'not allowed'}); allowed: {allowed}"  # noqa: E501


def check_module(engine: Engine, wasm: object, *, max_bytes: int) -> Module:
    """Compile ``wasm`` for ``engine`` if the sandbox may run it; else raise
    ``ModuleRejectedError`` naming the reason. Nothing of the module runs here."""
    if not isinstance(wasm, bytes | bytearray):
        raise ModuleRejectedError("a module is bytes (a WebAssembly binary)")
    if len(wasm) > max_bytes:
        raise ModuleRejectedError(
            f"the module is {len(wasm):,} bytes, over the limit of {max_bytes:,}"
        )
    if wasm[:4] != WASM_MAGIC:
        raise ModuleRejectedError("not a WebAssembly binary (no \\0asm magic)")
    if wasm[4:8] != WASM_VERSION_1:
        raise ModuleRejectedError(
            "not a WebAssembly 1.0 core module (a component or another version)"
        )
    try:
        Module.validate(engine, bytes(wasm))
    except WasmtimeError as error:
        raise ModuleRejectedError(f"not a valid WebAssembly module: {_first_line(error)}") from None
    guarded = guard_nans(bytes(wasm))  # a ModuleRejectedError naming what it cannot decode
    try:
        module = Module(engine, guarded.wasm)
    except WasmtimeError as error:  # e.g. a function already at the limit of locals
        raise ModuleRejectedError(
            f"the module cannot be compiled with its NaN guards: {_first_line(error)}"
        ) from None

    for item in module.imports:
        name = item.name or ""
        kind = item.type
        if item.module != WASI_MODULE or name not in ALLOWED:
            raise ModuleRejectedError(_refusal(item.module, name))
        if not isinstance(kind, FuncType):
            raise ModuleRejectedError(f"it imports {item.module}.{name} as something other "
                                      "than a function")  # fmt: skip
        params, results = ALLOWED[name]
        found = (_type_names(list(kind.params)), _type_names(list(kind.results)))
        if found != (params, results):
            raise ModuleRejectedError(
                f"it imports {item.module}.{name} with the type {found[0]} -> {found[1]}, "
                f"not WASI's {params} -> {results}"
            )

    exports = {item.name: item.type for item in module.exports}
    start = exports.get("_start")
    if not isinstance(start, FuncType) or list(start.params) or list(start.results):
        raise ModuleRejectedError(
            "it is not a WASI command: it must export _start, taking and returning nothing"
        )
    if not isinstance(exports.get("memory"), MemoryType):
        raise ModuleRejectedError("it must export its linear memory as \"memory\"")
    return module
