"""Running units: the modules (fetched once, checked against their name) and a pool of
``cores`` threads, each running one unit at a time in a worker process
(``compute.worker.Sandbox`` with kept workers: a worker serves further units of the same
module, each from a fresh engine, store and instance, fuel-metered, capped; it is
replaced after any unclean stop, after its share of units and when the module changes).

A module is named by its SHA-256. The bytes the platform sends are hashed before they
are kept or run, and refused if the hash is not the name: the name is what the
customer chose and what every device runs, so a module swapped on the way (or by a
compromised platform) is never run, and never paid for. Kept modules are hashed again
when read from the folder.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import write_private
from compute.errors import ComputeError
from compute.limits import Limits
from compute.profile import runtime_profile
from compute.unit import StopReason, Unit, UnitResult
from compute.worker import PreparedModule, Sandbox

LOG = logging.getLogger("agent.contribute")
#: the most wall-clock time the agent lets one unit run, whatever its deadline
DEFAULT_WALL_CAP_SECONDS = 600.0
#: a unit whose deadline is nearer than this when its turn comes is not started
START_MARGIN_SECONDS = 1.0
_SHA256_HEX = frozenset("0123456789abcdef")


class ModuleMismatchError(Exception):
    """The platform sent bytes whose SHA-256 is not the module's name."""


@dataclass(frozen=True)
class WorkItem:
    """One assignment as dispatch gave it."""

    assignment: int
    job: str
    unit: str
    module: str
    module_size: int
    args: tuple[str, ...]
    input: bytes = field(repr=False)
    fuel: int
    memory_bytes: int
    output_bytes: int
    runtime: str
    deadline: float  # a timestamp


class ModuleStore:
    """Modules by SHA-256 in an owner-only folder, fetched from the platform once."""

    def __init__(self, folder: Path, fetch: Callable[[str], bytes]) -> None:
        self.folder = folder
        self._fetch = fetch
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
            raise ModuleMismatchError(f"{sha256!r} is not a module's SHA-256")
        return self.folder / f"{sha256}.wasm"

    def get(self, sha256: str) -> bytes:
        """The module's bytes: from the folder if kept (and still matching), else fetched
        and checked."""
        path = self.path(sha256)
        with self._lock:
            try:
                kept = path.read_bytes()
            except FileNotFoundError:
                kept = None
            if kept is not None:
                if hashlib.sha256(kept).hexdigest() == sha256:
                    return kept
                LOG.warning("the kept module %s… does not match its name; fetching it again",
                            sha256[:12])
                path.unlink(missing_ok=True)
            wasm = self._fetch(sha256)
            got = hashlib.sha256(wasm).hexdigest()
            if got != sha256:
                raise ModuleMismatchError(
                    f"the platform sent a module whose SHA-256 is {got}, not {sha256}: "
                    "refused, not run")
            write_private(path, wasm)
            return wasm


@dataclass(frozen=True)
class Finished:
    """A unit's end as the pool reports it: its result, or why it was not run."""

    item: WorkItem
    result: UnitResult | None
    seconds: float
    problem: str = ""  # set when there is no result (not started, module refused, ...)


class UnitPool:
    """``cores`` threads, each running one unit at a time in a worker process.

    The threads share one ``Sandbox`` with kept workers (``reuse_workers=True``): a
    worker's start-up (Python, wasmtime, ~0.1 s) is paid once per worker, not per unit,
    so there are at most ``cores`` workers, each serving one unit at a time. A stop
    (``abandon``) kills them all, busy or idle, from the loop's thread.

    ``submit`` queues an item; ``finished`` hands back what ended. Units whose deadline
    has passed (or is within ``START_MARGIN_SECONDS``) when a thread takes them are not
    started: the platform has given them to another device by then."""

    def __init__(self, *, cores: int, sandbox_dir: Path, modules: ModuleStore,
                 wall_cap_seconds: float = DEFAULT_WALL_CAP_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.cores = cores
        self.sandbox_dir = sandbox_dir
        self.modules = modules
        self.wall_cap = wall_cap_seconds
        self.clock = clock
        self._todo: queue.Queue[WorkItem | None] = queue.Queue()
        self._done: queue.Queue[Finished] = queue.Queue()
        self._lock = threading.Lock()
        # created before the threads: the folder is made owner-only and checked here
        self._sandbox = Sandbox(sandbox_dir, limits=Limits(), reuse_workers=True)
        self._prepared: dict[str, PreparedModule] = {}
        self._prepare_lock = threading.Lock()
        self._stopping = threading.Event()
        self._running = 0
        self._queued = 0
        self._busy_since: float | None = None  # monotonic time the first running unit began
        self._busy_seconds = 0.0  # time with units running, not yet taken
        self._threads = [threading.Thread(target=self._work, name=f"unit-{n}", daemon=True)
                         for n in range(cores)]
        for thread in self._threads:
            thread.start()

    # --- the loop's side -------------------------------------------------------------------

    @property
    def busy(self) -> int:
        """Units queued or running."""
        with self._lock:
            return self._queued + self._running

    @property
    def workers(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes alive now (running a unit, compiling, or kept idle)."""
        return self._sandbox.processes

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def take_busy_seconds(self) -> float:
        """Wall-clock time during which at least one unit was running, since the last
        call (the day's hours count this)."""
        with self._lock:
            now = time.monotonic()
            if self._busy_since is not None:
                self._busy_seconds += now - self._busy_since
                self._busy_since = now
            taken, self._busy_seconds = self._busy_seconds, 0.0
            return taken

    def submit(self, item: WorkItem) -> None:
        with self._lock:
            self._queued += 1
        self._todo.put(item)

    def finished(self, timeout: float) -> list[Finished]:
        """What ended: waits up to ``timeout`` for the first, then takes all there are."""
        out: list[Finished] = []
        try:
            out.append(self._done.get(timeout=max(timeout, 0.0)))
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def abandon(self) -> None:
        """Stop: queued units are dropped, every worker killed (running or kept idle) and
        none started after; threads end."""
        self._stopping.set()
        self._sandbox.kill_workers()
        for _ in self._threads:
            self._todo.put(None)

    # --- the threads' side ---------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            item = self._todo.get()
            if item is None or self._stopping.is_set():
                return
            with self._lock:
                self._queued -= 1
                self._running += 1
                if self._busy_since is None:
                    self._busy_since = time.monotonic()
            started = time.monotonic()
            try:
                finished = self._run(item)
            except Exception as error:  # noqa: BLE001 (reported as the unit's problem)
                finished = Finished(item, None, time.monotonic() - started,
                                    f"{type(error).__name__}: {error}")
            # Handed back before it stops counting as busy: the loop, seeing nothing busy
            # and nothing to fetch, stops (``until_idle``); a result not yet in ``_done``
            # then would be dropped, its unit run and never sent.
            if not self._stopping.is_set():
                self._done.put(finished)
            with self._lock:
                self._running -= 1
                if not self._running and self._busy_since is not None:
                    self._busy_seconds += time.monotonic() - self._busy_since
                    self._busy_since = None

    def _module(self, sha256: str) -> PreparedModule:
        with self._prepare_lock:  # one compile per module, not one per thread
            prepared = self._prepared.get(sha256)
            if prepared is None:
                wasm = self.modules.get(sha256)
                prepared = self._sandbox.prepare(wasm)
                self._prepared[sha256] = prepared
            return prepared

    def _run(self, item: WorkItem) -> Finished:
        left = item.deadline - self.clock()
        if left < START_MARGIN_SECONDS:
            return Finished(item, None, 0.0, "its deadline passed before a core was free")
        if item.runtime != runtime_profile():
            return Finished(item, None, 0.0, f"the job runs under {item.runtime}, this agent "
                                             f"under {runtime_profile()}")
        try:
            module = self._module(item.module)
            limits = Limits(memory_bytes=item.memory_bytes, output_bytes=item.output_bytes,
                            wall_seconds=min(self.wall_cap, left))
            unit = Unit(job_id=item.job, unit_id=item.unit, input=item.input, fuel=item.fuel,
                        args=item.args)
        except (ComputeError, ModuleMismatchError) as error:
            return Finished(item, None, 0.0, str(error))
        started = time.monotonic()
        result = self._sandbox.run(module, unit, limits=limits)
        seconds = time.monotonic() - started
        if self._stopping.is_set() and result.stop is StopReason.WORKER_FAILED:
            return Finished(item, None, seconds, "abandoned")
        return Finished(item, result, seconds)
