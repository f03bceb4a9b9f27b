"""Units run in worker processes, so nothing a unit does reaches the agent.

``Sandbox`` is the agent's side. ``prepare`` stores a job's module in a private cache
folder under its SHA-256 and has a worker check and compile it once (the compiled
code is cached beside it, so a worker only loads it); ``run`` hands a unit to a worker
on its standard input and reads the result from its standard output. The worker is a
fresh process for the unit (the default), or, with ``reuse_workers=True`` (what the
agent runs), a process kept from an earlier unit of the same module: Python's and
wasmtime's start-up (~0.1 s) is then paid once per worker, not per unit, while every
unit still gets a new engine, store and instance in it. A kept worker is replaced after
any stop but ``exit`` and ``out-of-fuel``, after ``units_per_worker`` units, when the
module changes and when the parent kills it. A crash of wasmtime, a bug of ours or a
unit that somehow escapes its memory cap takes down that worker only: the agent gets a
``worker-failed`` result. The parent also keeps a hard timeout per unit (its
wall-clock cap plus a grace period) and kills a worker that overstays it, in case the
epoch interruption inside never fires (a host call that never returns).

Why a subprocess (``python -m compute.worker_main``) and not ``multiprocessing``: a
plain pipe protocol needs no pickling, starts nothing of the agent's ``__main__`` again,
and a killed worker leaves no shared state (queues, locks) behind. The worker gets a
minimal environment (no secrets of the agent's) and runs in the cache folder.

The protocol (``compute.protocol``): one JSON line, then raw bytes whose lengths the
line gives; the same in both directions, one answer a request. The worker's side is
``compute.worker_main``. Why kept workers and not a fork server: docs/COMPUTE.md, "The
worker process".

The compiled code is wasmtime's own serialisation (``Module.serialize``), which must
only ever be loaded from a trusted place: it is written by our worker into the cache
folder, which ``Sandbox`` creates owner-only and refuses when others can write it.
wasmtime refuses to load code compiled by another version or with other settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import selectors
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadRequestError, ModuleRejectedError, WorkerError
from .limits import Limits, check_int
from .profile import runtime_profile
from .protocol import BytesReader, message, message_length, read_message, write_atomically
from .unit import StopReason, Unit, UnitResult, check_input

#: what the worker may take to start and compile a module (Cranelift, up to 8 MiB)
DEFAULT_COMPILE_SECONDS = 120.0
#: what the parent allows a worker beyond the unit's own wall-clock cap (start-up, I/O)
DEFAULT_GRACE_SECONDS = 10.0
#: units a kept worker serves before it is replaced (``Sandbox(reuse_workers=True)``)
DEFAULT_UNITS_PER_WORKER = 100
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
_WORKER_STDERR_CHARS = 2000
_CHUNK = 1024 * 1024  # bytes a pipe is written or read at a time
_EXIT_SECONDS = 2.0  # what an idle worker whose input closed may take to exit
#: the stops after which a kept worker serves on: the unit ended by itself or by its fuel,
#: and nothing of it outlives its store. After any other the worker is replaced.
_CLEAN_STOPS = frozenset({StopReason.EXIT, StopReason.OUT_OF_FUEL})


@dataclass(frozen=True)
class PreparedModule:
    """A checked module in the cache, ready for ``Sandbox.run``."""

    sha256: str
    size: int
    wasm_path: Path
    compiled_path: Path


def _profile_tag() -> str:
    return hashlib.sha256(runtime_profile().encode()).hexdigest()[:16]


class _HardTimeoutError(Exception):
    """A kept worker did not answer within the unit's hard timeout."""


@dataclass
class _KeptWorker:
    """A worker process kept between units, with the module it serves."""

    process: subprocess.Popen[bytes]
    module: str  # the SHA-256 of the module it serves
    units: int = 0  # units it has answered


class Sandbox:
    """Runs units in worker processes, with modules cached by hash in ``cache_dir``.

    ``reuse_workers=False`` (the default): a fresh worker process for every unit.
    ``reuse_workers=True``: a worker is kept and serves further units of the same module,
    one at a time, each from a fresh engine, store and instance; it is ended after
    ``units_per_worker`` units, after any stop but ``exit`` and ``out-of-fuel``, when it
    would have to serve another module, and when the parent kills it at the unit's hard
    timeout. Several threads may share one sandbox: each ``run`` takes an idle worker of
    its module or starts one, so there are as many workers as units running at once.
    ``close`` ends the kept workers; ``kill_workers`` kills every worker of the sandbox,
    busy or not, from any thread (what an agent's stop does), and closes it.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        python: str = sys.executable,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        compile_seconds: float = DEFAULT_COMPILE_SECONDS,
        reuse_workers: bool = False,
        units_per_worker: int = DEFAULT_UNITS_PER_WORKER,
    ) -> None:
        # Absolute: a worker runs in the cache folder and is given paths inside it, so a
        # relative folder (the agent's `--data-dir carol-agent`) would not be found there.
        self.cache_dir = Path(cache_dir).resolve()
        self.limits = limits if limits is not None else Limits()
        self.reuse_workers = reuse_workers
        self._python = python
        self._grace = grace_seconds
        self._compile_seconds = compile_seconds
        self._units_per_worker = check_int("units_per_worker", units_per_worker, 1, 1_000_000)
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._idle: list[_KeptWorker] = []
        self._closed = False
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.cache_dir.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise BadRequestError(
                f"{self.cache_dir} must belong to this user and be writable by no one else: "
                "compiled code is loaded from it"
            )

    # --- worker processes ------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        """A new worker process (our interpreter, ``-s -m compute.worker_main``, a minimal
        environment, in the cache folder), counted among the live ones."""
        environment = {
            "PATH": os.environ.get("PATH", os.defpath),
            "PYTHONPATH": str(_PROJECT_ROOT),
            "LC_ALL": "C.UTF-8",
        }
        with self._lock:  # so that kill_workers never misses a worker being started
            if self._closed:
                raise WorkerError("the sandbox is closed: it starts no more workers")
            process = subprocess.Popen(  # noqa: S603  (our own interpreter and module, no shell)
                [self._python, "-s", "-m", "compute.worker_main"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cache_dir,
                env=environment,
            )
            self._live.add(process)
        return process

    def _end(self, process: subprocess.Popen[bytes], *, gently: bool = False) -> None:
        """End a worker: close its input and let it exit (``gently``, an idle worker), or
        kill it; then reap it and close the pipes."""
        try:
            if gently and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
                try:
                    process.wait(timeout=_EXIT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
            else:
                process.kill()  # does nothing to a process already reaped
            process.wait()
        finally:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            with self._lock:
                self._live.discard(process)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes alive now (running a unit, compiling, or kept idle)."""
        with self._lock:
            return list(self._live)

    def kill_workers(self) -> None:
        """Kill every worker of this sandbox, busy or idle, and start no more (a stop:
        units in flight end as ``worker-failed``). Safe from any thread."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            live = list(self._live)
        for process in live:
            with contextlib.suppress(OSError):  # it has just ended
                process.kill()
        for worker in idle:
            self._end(worker.process)

    def close(self) -> None:
        """End the kept workers (they exit at the end of their input) and kill any still
        running a unit; the sandbox starts no more workers."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            self._end(worker.process, gently=True)
        self.kill_workers()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, request: bytes, *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        """One request to a fresh worker, which then exits; killed at ``timeout``."""
        process = self._start()
        try:
            try:
                stdout, stderr = process.communicate(request, timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise
        finally:
            with self._lock:
                self._live.discard(process)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    @staticmethod
    def _worker_stderr(completed: subprocess.CompletedProcess[bytes]) -> str:
        text = completed.stderr.decode("utf-8", "replace").strip()
        return text[-_WORKER_STDERR_CHARS:] or f"exit status {completed.returncode}"

    # --- kept workers ----------------------------------------------------------------

    def _take_worker(self, module: str) -> _KeptWorker:
        """An idle worker of ``module`` still fit to serve, or a new one. An idle worker
        of another module makes way (it is ended), so that there are never more workers
        than units running at once."""
        with self._lock:
            if self._closed:
                raise WorkerError("the sandbox is closed: it starts no more workers")
            mine = [w for w in self._idle if w.module == module]
            found = mine[-1] if mine else None
            other = None if mine else (self._idle[0] if self._idle else None)
            for worker in (found, other):
                if worker is not None:
                    self._idle.remove(worker)
        if other is not None:
            self._end(other.process)
        if found is not None:
            if _quiet(found.process):
                return found
            self._end(found.process)  # it ended, or wrote while idle: not to be trusted
        return _KeptWorker(self._start(), module)

    def _give_back(self, worker: _KeptWorker, *, fit: bool) -> None:
        """Keep the worker for the next unit if ``fit`` and it has units left, else end it."""
        worker.units += 1
        if fit and worker.units < self._units_per_worker:
            with self._lock:
                if not self._closed and worker.process in self._live:
                    self._idle.append(worker)
                    return
        self._end(worker.process)

    def _exchange(self, worker: _KeptWorker, request: bytes, *, timeout: float) -> bytes:
        """Send ``request`` to a kept worker and read its whole answer, within ``timeout``
        (``_HardTimeoutError``); a worker that ends without a whole answer is a ``WorkerError``."""
        process = worker.process
        if process.stdin is None or process.stdout is None or process.stderr is None:
            raise WorkerError("the worker has no pipes")  # never: all three are PIPE
        deadline = time.monotonic() + timeout
        requests, answers, errors = (process.stdin.fileno(), process.stdout.fileno(),
                                     process.stderr.fileno())  # fmt: skip
        os.set_blocking(requests, False)
        view = memoryview(request)
        sent = 0
        answer = bytearray()
        expected: int | None = None
        tail = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(requests, selectors.EVENT_WRITE)
            selector.register(answers, selectors.EVENT_READ)
            selector.register(errors, selectors.EVENT_READ)
            while expected is None or len(answer) < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _HardTimeoutError
                for key, _ in selector.select(remaining):
                    if key.fd == requests:
                        try:
                            sent += os.write(requests, view[sent : sent + _CHUNK])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            sent = len(view)  # it is gone: its end of output says how
                        if sent >= len(view):
                            selector.unregister(requests)
                    elif key.fd == errors:
                        chunk = os.read(errors, _CHUNK)
                        if not chunk:
                            selector.unregister(errors)
                        tail = (tail + chunk)[-_WORKER_STDERR_CHARS * 4 :]
                    else:
                        chunk = os.read(answers, _CHUNK)
                        if not chunk:
                            selector.unregister(answers)
                            raise _died(process, tail, selector, deadline)
                        answer += chunk
                        if expected is None:
                            try:
                                expected = message_length(bytes(answer), what="worker's answer")
                            except WorkerError as error:
                                raise WorkerError(
                                    f"the worker answered outside its protocol: {error}"
                                ) from None
            if sent < len(view) or len(answer) > expected:
                raise WorkerError("the worker answered outside its protocol: "
                                  "it answered before reading the whole request, or wrote "
                                  "more than its answer")  # fmt: skip
        return bytes(answer)

    # --- the agent's side ------------------------------------------------------------

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
        request = message(self._request("compile", prepared, self.limits))
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

    @staticmethod
    def _request(op: str, module: PreparedModule, limits: Limits) -> dict[str, Any]:
        return {
            "op": op,
            "wasm": str(module.wasm_path),
            "sha256": module.sha256,
            "compiled": str(module.compiled_path),
            "limits": limits.to_json(),
            "runtime": runtime_profile(),
        }

    def _answer(
        self, completed: subprocess.CompletedProcess[bytes]
    ) -> tuple[dict[str, Any], list[bytes]]:
        if completed.returncode != 0:
            raise WorkerError(f"the worker failed: {self._worker_stderr(completed)}")
        return _parse_answer(completed.stdout)

    def run(
        self, module: PreparedModule, unit: Unit, *, limits: Limits | None = None
    ) -> UnitResult:
        """Run one unit in a worker process and return its result.

        ``limits``: this unit's, instead of the sandbox's (an agent's units come with
        their job's caps and their own deadline). The unit's misbehaviour is a result
        (its ``stop``), never an exception; so is a worker that crashed
        (``worker-failed``) or had to be killed (``wall-clock``). A kept worker
        (``reuse_workers``) gives the same result, bit for bit, as a fresh one.
        """
        limits = limits if limits is not None else self.limits
        check_input(unit, limits)
        request = message(
            {
                **self._request("run", module, limits),
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

        hard_timeout = limits.wall_seconds + self._grace
        killed = f"the worker did not finish within {hard_timeout:g} s and was killed"
        if self.reuse_workers:
            fit = False
            try:
                worker = self._take_worker(module.sha256)
            except (WorkerError, OSError) as error:
                return failed(StopReason.WORKER_FAILED, f"no worker could be started: {error}")
            try:
                answer = self._exchange(worker, request, timeout=hard_timeout)
                result = _result_from(*_parse_answer(answer), unit=unit, limits=limits)
                fit = result.stop in _CLEAN_STOPS
                return result
            except _HardTimeoutError:
                return failed(StopReason.WALL_CLOCK, killed)
            except WorkerError as error:
                return failed(StopReason.WORKER_FAILED, str(error))
            finally:
                self._give_back(worker, fit=fit)
        try:
            completed = self._call(request, timeout=hard_timeout)
        except subprocess.TimeoutExpired:
            return failed(StopReason.WALL_CLOCK, killed)
        except WorkerError as error:  # the sandbox was closed
            return failed(StopReason.WORKER_FAILED, str(error))
        try:
            header, blobs = self._answer(completed)
            return _result_from(header, blobs, unit=unit, limits=limits)
        except WorkerError as error:
            return failed(StopReason.WORKER_FAILED, str(error))


def _died(
    process: subprocess.Popen[bytes],
    tail: bytearray,
    selector: selectors.BaseSelector,
    deadline: float,
) -> Exception:
    """What to raise when a kept worker's output ended: how it exited, the end of its
    standard error (still registered with ``selector``, if not at its end yet)."""
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        return _HardTimeoutError()
    for key in list(selector.get_map().values()):
        if key.events & selectors.EVENT_WRITE:
            selector.unregister(key.fd)  # its input: nothing more is sent to it
    while selector.get_map() and selector.select(_EXIT_SECONDS):  # it has exited: the rest
        (key,) = selector.get_map().values()
        chunk = os.read(key.fd, _CHUNK)
        if not chunk:
            break
        tail += chunk
    text = bytes(tail).decode("utf-8", "replace").strip()[-_WORKER_STDERR_CHARS:]
    if process.returncode == 0:
        return WorkerError(
            f"the worker answered outside its protocol: it exited without a whole answer {text}"
        )
    return WorkerError(f"the worker failed: {text or f'exit status {process.returncode}'}")


def _quiet(process: subprocess.Popen[bytes]) -> bool:
    """An idle kept worker is still running and has written nothing since its answer."""
    if process.poll() is not None or process.stdout is None or process.stderr is None:
        return False
    readable, _, _ = select.select([process.stdout, process.stderr], [], [], 0)
    return not readable


def _parse_answer(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    try:
        header, blobs = read_message(BytesReader(data), what="worker's answer")
    except (WorkerError, ValueError) as error:
        raise WorkerError(f"the worker answered outside its protocol: {error}") from None
    if "error" in header:
        raise WorkerError(f"the worker failed: {header['error']}")
    return header, blobs


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
