"""The contribute loop: fetch a batch, run it, sign each result, send the results back.

One thread (the caller's) talks to the platform; the pool's threads only run units.
Each turn of the loop:

1. takes what the pool finished, signs each result with the device key
   (``compute.results.sign_unit_result``) and sends them in one batch; each gets its
   own answer (accepted, duplicate, rejected and why). A batch whose answer was lost
   is sent again as it was: the platform answers the same result ``duplicate``;
2. if a core is free, nothing stops it (the day's hours, battery, idle rules:
   ``limits.Conditions``) and no wait is pending, asks for up to ``batch`` units.
   Each request has its own ``Idempotency-Key``, and a retry after a lost answer (no
   answer, a 5xx, a 429, or the first request still running) sends the same key, so
   the platform hands out the same units again rather than new ones;
3. waits for a unit to finish, at most a second (the progress line's pace).

The platform's errors are retried with exponential back-off (1 s doubling to 60 s);
a refusal that will not change by itself (a revoked device, a suspended contributor)
ends the loop with its reason. Stopping (``stop``, Ctrl-C) abandons units in flight:
their worker processes are killed and their results never sent; the platform gives
them to another device after their deadline.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import AgentHome
from agent.contribute.limits import Conditions, DeclaredLimits, Pause, UsageLedger
from agent.contribute.runner import (
    DEFAULT_WALL_CAP_SECONDS,
    Finished,
    ModuleStore,
    UnitPool,
    WorkItem,
)
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError
from compute.profile import runtime_profile
from compute.results import sign_unit_result
from compute.unit import UnitResult
from licensing.core import DeviceKeys

LOG = logging.getLogger("agent.contribute")
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
#: the platform's errors worth asking again about: its own trouble, a rate limit, or a
#: request with the same idempotency key still running
TRANSIENT_CODES = frozenset({"idempotency_in_flight"})
#: the longest the loop waits between looks at the pool (the progress line's pace)
TICK_SECONDS = 1.0


def compute_dir(home: AgentHome) -> Path:
    """The agent's compute folder: modules, the sandbox's cache, the usage ledger, the log."""
    return home.root / "compute"


def transient(error: Exception) -> bool:
    """Whether asking again later may succeed."""
    if isinstance(error, PlatformUnreachableError):
        return True
    if isinstance(error, PlatformError):
        return error.status >= 500 or error.status == 429 or error.code in TRANSIENT_CODES
    return False


@dataclass(frozen=True)
class Options:
    limits: DeclaredLimits
    batch: int
    max_units: int | None = None
    until_idle: bool = False
    wall_cap_seconds: float = DEFAULT_WALL_CAP_SECONDS


@dataclass
class Tally:
    """What this run did: units fetched and run, and the platform's answers."""

    fetched: int = 0
    units_run: int = 0
    not_run: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stopped_because: str = ""
    pause: Pause | None = None
    running: int = 0
    used_today: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"units_run": self.units_run, "accepted": self.accepted,
                "rejected": self.rejected, "duplicate": self.duplicate,
                "not_run": self.not_run, "rejected_reasons": dict(sorted(self.reasons.items())),
                "stopped_because": self.stopped_because}


class Backoff:
    """Delays between retries: 1, 2, 4 ... 60 s."""

    def __init__(self) -> None:
        self.delay = 0.0

    def next(self) -> float:
        self.delay = BACKOFF_FIRST if not self.delay else min(self.delay * 2, BACKOFF_MAX)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def parse_assignment(raw: dict[str, Any]) -> WorkItem:
    deadline = dt.datetime.fromisoformat(str(raw["deadline"]).replace("Z", "+00:00"))
    return WorkItem(
        assignment=int(raw["assignment"]), job=str(raw["job"]), unit=str(raw["unit"]),
        module=str(raw["module"]), module_size=int(raw["module_size"]),
        args=tuple(str(a) for a in raw["args"]),
        input=base64.b64decode(str(raw["input"]), validate=True), fuel=int(raw["fuel"]),
        memory_bytes=int(raw["memory_bytes"]), output_bytes=int(raw["output_bytes"]),
        runtime=str(raw["runtime"]), deadline=deadline.timestamp())


class ResultsLog:
    """One JSON line per unit this device ran and what the platform said of it, in the
    agent's folder (``compute/results.jsonl``): the owner's record of the work done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry, sort_keys=True) + "\n")


class ContributeLoop:
    """Runs until stopped, idle (``until_idle``), done (``max_units``) or refused."""

    def __init__(self, *, platform: PlatformClient, device: DeviceKeys, home: AgentHome,
                 options: Options, conditions: Conditions | None = None,
                 report: Callable[[Tally], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 sign: Callable[[DeviceKeys, UnitResult, int], str] | None = None) -> None:
        self.platform = platform
        self.device = device
        self.options = options
        self.folder = compute_dir(home)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ledger = UsageLedger(self.folder / "usage.json",
                                  hours_per_day=options.limits.hours_per_day)
        self.conditions = conditions or Conditions(limits=options.limits, ledger=self.ledger)
        self.conditions.ledger = self.ledger
        self.report: Callable[[Tally], None] = report or (lambda _tally: None)
        self.clock = clock
        self.sign = sign or (lambda keys, result, at: sign_unit_result(keys, result,
                                                                       issued_at=at))
        self.log = ResultsLog(self.folder / "results.jsonl")
        self.tally = Tally()
        self._stop = threading.Event()
        self._outbox: list[tuple[Finished, str]] = []  # signed, not yet answered
        self._next_ask = 0.0
        self._idle_seen = False
        self._pool: UnitPool | None = None
        self.error: Exception | None = None  # the refusal that stopped the loop

    # --- control ----------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        if not self.tally.stopped_because:
            self.tally.stopped_because = reason
        self._stop.set()

    def _wait(self, seconds: float) -> None:
        self._stop.wait(max(0.0, seconds))

    def enroll(self) -> dict[str, Any] | None:
        limits = self.options.limits
        return self._retrying("opting in", lambda: self.platform.compute_enroll(
            device_id=self.device.device_id, runtime=runtime_profile(), cores=limits.cores,
            memory_bytes=limits.memory_bytes, hours_per_day=limits.hours_per_day,
            only_when_idle=limits.only_when_idle))

    def run(self) -> Tally:
        """Opt in, then work until a stop; always leaves the pool abandoned."""
        modules = ModuleStore(self.folder / "modules", self.platform.compute_module)
        self._pool = UnitPool(cores=self.options.limits.cores, sandbox_dir=self.folder / "sandbox",
                              modules=modules, wall_cap_seconds=self.options.wall_cap_seconds,
                              clock=self.clock)
        try:
            self.enroll()
            while not self._stop.is_set():
                self._collect(self._pool.finished(timeout=0))
                self._send()
                if self._stop.is_set():
                    break
                self._maybe_fetch()
                if self._stop.is_set() or self._done_for_now():
                    break
                self._collect(self._pool.finished(timeout=self._tick()))
                self.ledger.add(self._pool.take_busy_seconds(), self.clock())
                self.tally.running = self._pool.running
                self.tally.used_today = self.ledger.used(self.clock())
                self.report(self.tally)
            if self.tally.stopped_because in ("idle", "max-units"):
                self._send()  # the last results (and their retries)
        finally:
            self._pool.abandon()
            self.ledger.add(self._pool.take_busy_seconds(), self.clock())
            self.ledger.save()
        self.tally.running = 0
        self.report(self.tally)
        return self.tally

    def _tick(self) -> float:
        if self._outbox:
            return 0.0
        return min(TICK_SECONDS, max(0.0, self._next_ask - self.clock())) or TICK_SECONDS

    def _done_for_now(self) -> bool:
        assert self._pool is not None
        if self._pool.busy or self._outbox:
            return False
        if self.options.max_units is not None and self.tally.fetched >= self.options.max_units:
            self.stop("max-units")
            return True
        if self.options.until_idle and self._idle_seen:
            self.stop(self.tally.pause.reason if self.tally.pause else "idle")
            return True
        return False

    # --- fetching ---------------------------------------------------------------------------

    def _maybe_fetch(self) -> None:
        assert self._pool is not None
        if self._idle_seen and self.options.until_idle:
            return
        now = self.clock()
        if now < self._next_ask:
            return
        # Ask when a core is free, for enough to hold ``batch`` units here (queued or
        # running): a larger batch saves round trips, at the price of units waiting.
        busy = self._pool.busy
        free = self.options.limits.cores - busy
        wanted = max(free, self.options.batch - busy) if free > 0 else 0
        if self.options.max_units is not None:
            wanted = min(wanted, self.options.max_units - self.tally.fetched)
        if wanted <= 0:
            return
        pause = self.conditions.pause(now=now, running=self._pool.running)
        self.tally.pause = pause
        if pause is not None:
            LOG.info("paused: %s", pause.detail)
            self._next_ask = pause.until
            self._idle_seen = True
            return
        key = str(uuid.uuid4())
        answer = self._retrying("asking for units", lambda: self.platform.compute_dispatch(
            device_id=self.device.device_id, max_units=wanted, idempotency_key=key))
        if answer is None:
            return
        given = [parse_assignment(raw) for raw in answer.get("assignments", [])]
        for item in given:
            self._pool.submit(item)
        self.tally.fetched += len(given)
        if not given:
            self._idle_seen = True
            self._next_ask = self.clock() + max(1.0, float(answer.get("retry_after") or 0))

    # --- results ------------------------------------------------------------------------------

    def _collect(self, finished: list[Finished]) -> None:
        log = []
        for done in finished:
            if done.result is None:
                self.tally.not_run += 1
                LOG.warning("unit %s of job %s not run: %s", done.item.unit, done.item.job,
                            done.problem)
                log.append(self._entry(done, "not-run", done.problem))
                continue
            self.tally.units_run += 1
            token = self.sign(self.device, done.result, int(self.clock()))
            self._outbox.append((done, token))
        self.log.write(log)

    def _send(self) -> None:
        if not self._outbox:
            return
        batch = self._outbox[:256]
        body = [{"assignment": done.item.assignment, "token": token,
                 "output": base64.b64encode(done.result.output).decode("ascii")}
                for done, token in batch if done.result is not None]
        answer = self._retrying("sending results", lambda: self.platform.compute_results(
            device_id=self.device.device_id, results=body))
        if answer is None:
            return
        del self._outbox[:len(batch)]
        by_index = {int(r["index"]): r for r in answer.get("results", [])}
        log = []
        for index, (done, _token) in enumerate(batch):
            outcome = by_index.get(index, {"status": "rejected", "reason": "no_answer"})
            status, reason = str(outcome["status"]), str(outcome.get("reason") or "")
            if status == "accepted":
                self.tally.accepted += 1
            elif status == "duplicate":
                self.tally.duplicate += 1
            else:
                self.tally.rejected += 1
                self.tally.reasons[reason] += 1
                LOG.warning("result for unit %s of job %s rejected: %s %s", done.item.unit,
                            done.item.job, reason, outcome.get("message", ""))
            log.append(self._entry(done, status, reason))
        self.log.write(log)

    def _entry(self, done: Finished, status: str, reason: str) -> dict[str, Any]:
        result = done.result
        return {"at": int(self.clock()), "job": done.item.job, "unit": done.item.unit,
                "assignment": done.item.assignment, "status": status, "reason": reason,
                "fuel": result.fuel_consumed if result else None,
                "stop": result.stop.value if result else None,
                "seconds": round(done.seconds, 3)}

    # --- talking to the platform --------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """``call`` until it answers; None if stopped meanwhile. A refusal that will not
        change by itself stops the loop (its code is the reason) and returns None."""
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                return call()
            except (PlatformError, PlatformUnreachableError) as error:
                if not transient(error):
                    code = error.code if isinstance(error, PlatformError) else "unreachable"
                    LOG.error("%s: the platform refused: %s [%s]", what, error, code)
                    self.error = error
                    self.stop(code)
                    return None
                delay = backoff.next()
                LOG.warning("%s: %s; trying again in %.0f s", what, error, delay)
                self._wait(delay)
        return None
