"""Units run in a worker process of their own, so nothing a unit does reaches the agent.

``Sandbox`` is the agent's side. ``prepare`` stores a job's module in a private cache
folder under its SHA-256 and has a worker check and compile it once (the compiled
code is cached beside it, so each unit's worker only loads it); ``run`` starts a
fresh worker per unit, hands it the unit on standard input and reads the result
from standard output. A crash of wasmtime, a bug of ours or a unit that somehow
escapes its memory cap takes down that worker only: the agent gets a
``worker-failed`` result. The parent also keeps a hard timeout (the unit's
wall-clock cap plus a grace period) and kills a worker that overstays it, in case
the epoch interruption inside never fires (a host call that never returns).

Why a subprocess (``python -m compute.worker_main``) and not ``multiprocessing``: a
plain pipe protocol needs no pickling, starts nothing of the agent's ``__main__`` again,
and a killed worker leaves no shared state (queues, locks) behind. The worker gets a
minimal environment (no secrets of the agent's) and runs in the cache folder.

The protocol (``compute.protocol``): one JSON line, then raw bytes whose lengths the
line gives; the same in both directions. The worker's side is ``compute.worker_main``.

The compiled code is wasmtime's own serialisation (``Module.serialize``), which must
only ever be loaded from a trusted place: it is written by our worker into the cache
folder, which ``Sandbox`` creates owner-only and refuses when others can write it.
wasmtime refuses to load code compiled by another version or with other settings.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadRequestError, ModuleRejectedError, WorkerError
from .limits import Limits
from .profile import runtime_profile
from .protocol import BytesReader, message, read_message, write_atomically
from .unit import StopReason, Unit, UnitResult, check_input

#: what the worker may take to start and compile a module (Cranelift, up to 8 MiB)
DEFAULT_COMPILE_SECONDS = 120.0
#: what the parent allows a worker beyond the unit's own wall-clock cap (start-up, I/O)
DEFAULT_GRACE_SECONDS = 10.0
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
_WORKER_STDERR_CHARS = 2000


@dataclass(frozen=True)
class PreparedModule:
    """A checked module in the cache, ready for ``Sandbox.run``."""

    sha256: str
    size: int
    wasm_path: Path
    compiled_path: Path


def _profile_tag() -> str:
    return hashlib.sha256(runtime_profile().encode()).hexdigest()[:16]


class Sandbox:
    """Runs units in worker processes, with modules cached by hash in ``cache_dir``."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        python: str = sys.executable,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        compile_seconds: float = DEFAULT_COMPILE_SECONDS,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.limits = limits if limits is not None else Limits()
        self._python = python
        self._grace = grace_seconds
        self._compile_seconds = compile_seconds
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.cache_dir.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise BadRequestError(
                f"{self.cache_dir} must belong to this user and be writable by no one else: "
                "compiled code is loaded from it"
            )

    # --- the agent's side ------------------------------------------------------------

    def _call(self, request: bytes, *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        environment = {
            "PATH": os.environ.get("PATH", os.defpath),
            "PYTHONPATH": str(_PROJECT_ROOT),
            "LC_ALL": "C.UTF-8",
        }
        return subprocess.run(  # noqa: S603  (our own interpreter and module, no shell)
            [self._python, "-s", "-m", "compute.worker_main"],
            input=request,
            capture_output=True,
            timeout=timeout,
            cwd=self.cache_dir,
            env=environment,
            check=False,
        )

    @staticmethod
    def _worker_stderr(completed: subprocess.CompletedProcess[bytes]) -> str:
        text = completed.stderr.decode("utf-8", "replace").strip()
        return text[-_WORKER_STDERR_CHARS:] or f"exit status {completed.returncode}"

    def prepare(self, wasm: bytes) -> PreparedModule:
        """Check and compile a module once; raise ``ModuleRejectedError`` if it may not run."""
        if not isinstance(wasm, bytes | bytearray):
            raise ModuleRejectedError("a module is bytes (a WebAssembly binary)")
        if len(wasm) > self.limits.module_bytes:
            raise ModuleRejectedError(
                f"the module is {len(wasm):,} bytes, over the limit of {self.limits.module_bytes:,}"
            )
        digest = hashlib.sha256(wasm).hexdigest()
        prepared = PreparedModule(
            sha256=digest,
            size=len(wasm),
            wasm_path=self.cache_dir / f"{digest}.wasm",
            compiled_path=self.cache_dir / f"{digest}-{_profile_tag()}.cwasm",
        )
        if prepared.compiled_path.exists():
            return prepared
        if not prepared.wasm_path.exists():
            write_atomically(prepared.wasm_path, bytes(wasm))
        request = message(self._request("compile", prepared))
        try:
            completed = self._call(request, timeout=self._compile_seconds)
        except subprocess.TimeoutExpired:
            raise WorkerError(
                f"compiling the module took over {self._compile_seconds:g} s; the worker was killed"
            ) from None
        header, _ = self._answer(completed)
        if "rejected" in header:
            prepared.wasm_path.unlink(missing_ok=True)  # keep no module that may not run
            raise ModuleRejectedError(str(header["rejected"]))
        return prepared

    def _request(self, op: str, module: PreparedModule) -> dict[str, Any]:
        return {
            "op": op,
            "wasm": str(module.wasm_path),
            "sha256": module.sha256,
            "compiled": str(module.compiled_path),
            "limits": self.limits.to_json(),
            "runtime": runtime_profile(),
        }

    def _answer(
        self, completed: subprocess.CompletedProcess[bytes]
    ) -> tuple[dict[str, Any], list[bytes]]:
        if completed.returncode != 0:
            raise WorkerError(f"the worker failed: {self._worker_stderr(completed)}")
        try:
            header, blobs = read_message(BytesReader(completed.stdout), what="worker's answer")
        except (WorkerError, ValueError) as error:
            raise WorkerError(f"the worker answered outside its protocol: {error}") from None
        if "error" in header:
            raise WorkerError(f"the worker failed: {header['error']}")
        return header, blobs

    def run(self, module: PreparedModule, unit: Unit) -> UnitResult:
        """Run one unit in a fresh worker process and return its result.

        The unit's misbehaviour is a result (its ``stop``), never an exception; so is
        a worker that crashed (``worker-failed``) or had to be killed (``wall-clock``).
        """
        check_input(unit, self.limits)
        request = message(
            {
                **self._request("run", module),
                "job": unit.job_id,
                "unit": unit.unit_id,
                "fuel": unit.fuel,
                "args": list(unit.args),
            },
            unit.input,
        )

        def failed(stop: StopReason, detail: str) -> UnitResult:
            return UnitResult(job_id=unit.job_id, unit_id=unit.unit_id, stop=stop,
                              exit_status=None, output=b"", stderr_tail=b"", fuel_consumed=0,
                              detail=detail, runtime=runtime_profile())  # fmt: skip

        hard_timeout = self.limits.wall_seconds + self._grace
        try:
            completed = self._call(request, timeout=hard_timeout)
        except subprocess.TimeoutExpired:
            return failed(
                StopReason.WALL_CLOCK,
                f"the worker did not finish within {hard_timeout:g} s and was killed",
            )
        try:
            header, blobs = self._answer(completed)
            return _result_from(header, blobs, unit=unit, limits=self.limits)
        except WorkerError as error:
            return failed(StopReason.WORKER_FAILED, str(error))


def _result_from(
    header: dict[str, Any], blobs: list[bytes], *, unit: Unit, limits: Limits
) -> UnitResult:
    """The worker's answer as a ``UnitResult``; anything out of shape is a ``WorkerError``."""
    try:
        stop = StopReason(header["stop"])
        exit_status = header["exit"]
        fuel = header["fuel"]
        runtime = header["runtime"]
        output, stderr_tail = blobs
    except (KeyError, ValueError, TypeError):
        raise WorkerError("the worker's answer lacks its fields") from None
    if (stop is StopReason.EXIT) != (type(exit_status) is int):
        raise WorkerError("the worker's exit status does not match its stop reason")
    if type(fuel) is not int or not 0 <= fuel <= unit.fuel:
        raise WorkerError("the worker reported impossible fuel")
    if len(output) > limits.output_bytes or len(stderr_tail) > limits.stderr_tail_bytes:
        raise WorkerError("the worker returned more output than the limits allow")
    return UnitResult(
        job_id=unit.job_id,
        unit_id=unit.unit_id,
        stop=stop,
        exit_status=exit_status,
        output=output,
        stderr_tail=stderr_tail,
        fuel_consumed=fuel,
        detail=str(header.get("detail", "")),
        runtime=str(runtime),
    )
