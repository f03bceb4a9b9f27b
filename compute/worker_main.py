"""The worker process: ``python -m compute.worker_main`` serves requests until stdin closes.

``compute.worker.Sandbox`` starts it. It reads a request on stdin (compile a module into
the cache, or run one unit), answers it on stdout (``compute.protocol``), and reads the
next, until its stdin ends. A fresh worker (``Sandbox``'s default) gets one request and
then end of input; a kept worker (``Sandbox(..., reuse_workers=True)``) gets many units
of one module, one at a time, and is ended by ``Sandbox`` after a fixed number of units,
after any unclean stop, or when the module changes.

Every unit starts from nothing of the previous one: a new engine (so its own epoch
counter, which the wall-clock timer bumps), the module loaded anew from the cache for it,
a new store (fuel, memory, tables, globals), linker and instance, and a new WASI state
(input, output, random stream from the unit's ids). What units share is the interpreter
and wasmtime's code loaded into it, which is what start-up cost. After an error the
worker answers it and exits: it does not serve on in a state it does not know.

It imports only what a unit needs: a worker's start-up is part of the first unit's cost.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, cast

from wasmtime import Engine, Module, WasmtimeError

from .errors import ModuleRejectedError, WorkerError
from .limits import Limits
from .protocol import message, read_message, write_atomically
from .sandbox import make_engine, run_unit
from .unit import Unit


def _load_module(engine: Engine, request: dict[str, Any], limits: Limits) -> Module:
    """The request's module: the cached compiled code, or checked and compiled now.

    Compiling is ``check_module``'s: it adds the NaN guards (``compute.nan_guard``), so
    the cache holds the guarded module's code, under the SHA-256 of the module as
    submitted (the job's identity) and the runtime profile (which names the guards'
    version). The compiled code is wasmtime's own serialisation, loaded only from the
    cache folder that ``Sandbox`` keeps owner-only; wasmtime refuses code from another
    version or compiled with other settings, and then the module is compiled again.
    Checking is imported only on that path: a unit's worker only loads (a fraction of a
    millisecond, so it is done again for every unit, with the unit's own engine).
    """
    compiled = Path(request["compiled"])
    if compiled.exists():
        try:
            return Module.deserialize_file(engine, str(compiled))
        except WasmtimeError:
            compiled.unlink(missing_ok=True)  # another version's or damaged: compile again
    import hashlib

    from .module_check import check_module

    wasm = Path(request["wasm"]).read_bytes()
    if hashlib.sha256(wasm).hexdigest() != request["sha256"]:
        raise WorkerError("the cached module does not match its hash")
    module = check_module(engine, wasm, max_bytes=limits.module_bytes)
    write_atomically(compiled, bytes(module.serialize()))
    return module


def _serve(request: dict[str, Any], blobs: list[bytes]) -> bytes:
    """One request's answer. Everything a unit runs with is made here, for it alone."""
    limits = Limits.from_json(request.get("limits"))
    engine = make_engine()
    try:
        module = _load_module(engine, request, limits)
    except ModuleRejectedError as error:
        return message({"rejected": str(error)})
    if request["op"] == "compile":
        return message({"ok": True})
    if request["op"] != "run" or len(blobs) != 1:
        raise WorkerError("unknown request")
    unit = Unit(job_id=request["job"], unit_id=request["unit"], input=blobs[0],
                fuel=request["fuel"], args=tuple(request["args"]))  # fmt: skip
    runtime = request["runtime"]
    if not isinstance(runtime, str):
        raise WorkerError("the request names no runtime profile")
    result = run_unit(engine, module, unit, limits, runtime=runtime)
    return message(
        {
            "stop": result.stop.value,
            "exit": result.exit_status,
            "fuel": result.fuel_consumed,
            "detail": result.detail,
            "runtime": result.runtime,
        },
        result.output,
        result.stderr_tail,
    )


def main() -> int:
    """``python -m compute.worker_main``: requests on stdin, one answer each on stdout,
    until stdin ends. A worker serves one module: a request for another is an error."""
    answer_stream = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the answers may reach the real stdout
    requests = cast(io.BufferedReader, sys.stdin.buffer)  # a pipe: buffered, can peek
    module: str | None = None
    while requests.peek(1):  # empty only at the end of input
        failed = False
        try:
            request, blobs = read_message(requests, what="request", last=False)
            if module is not None and request["sha256"] != module:
                raise WorkerError("a worker serves the units of one module only")
            module = request["sha256"]
            answer = _serve(request, blobs)
        except (WorkerError, KeyError, TypeError, ValueError, OSError) as error:
            answer = message({"error": f"{type(error).__name__}: {error}"})
            failed = True
        answer_stream.write(answer)
        answer_stream.flush()
        if failed:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
