"""A bounded load run: 200 peer agents heartbeating and announcing their holdings while
8 buyers buy and 20 serving agents submit signed orders, for 60 s, on loopback.

    .venv/bin/python benchmarks/load/run.py [--seconds 60] [--runs 3] [--peers 200]
        [--servers 20] [--buyers 8] [--buy-every 1.0] [--no-write]

Each run starts a fresh platform as production runs it (benchmarks/load/launch.py:
PostgreSQL, a Redis of its own, gunicorn with the project's settings, one Celery worker
and one beat, so metering flushes and settlements happen as they would), makes the
accounts, devices, works and wallets it needs outside the measured window
(benchmarks/load/world.py), then drives the load over real HTTP from one process: the
agents are asyncio coroutines with httpx clients (benchmarks/load/agents.py says how
each is paced). After the window: the serving agents' last flush, the final metering
flush, every order the API accepted checked to be recorded exactly once, the receipted
purchases left to settle, ``manage.py check_books``, and the platform's logs searched
for tracebacks, errors and task retries.

Reported per endpoint: requests, errors (target 0), p50 and p99 latency, throughput;
medians over the runs with their range. It makes (and drops) the database
``peermark_bench_load`` on ``BENCH_PG`` (default ``postgres://postgres@127.0.0.1:5432``).
``--smoke`` is a five-second run with a small population, for trying it out.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import machine, median, write_section
from benchmarks.load import launch
from benchmarks.load.agents import ENDPOINTS, Load
from benchmarks.load.world import build

WORK = launch.ROOT / "benchmarks" / ".work"  # git-ignored
BOOKS_COMMAND = (launch.ROOT / "exchange" / "operations" / "management" / "commands"
                 / "check_books.py")


FLUSH_AND_CHECK_BOOKS = """
import contextlib, io
from django.core.management import call_command
call_command("flush_metering")
out = io.StringIO()
with contextlib.suppress(SystemExit):  # check_books exits 1 when it finds a problem
    call_command("check_books", "--json", stdout=out)
print(out.getvalue().strip())
"""


@dataclass
class Settings:
    seconds: float = 60.0
    peers: int = 200
    servers: int = 20
    buyers: int = 8
    buy_every: float = 1.0  # seconds between one buyer's purchases
    acquire_every: float = 60.0  # mean seconds between a peer agent's new holdings
    work_size: tuple[int, int] = (1200, 900)  # pixels of each work's (noisy) PNG
    seed: int = 1

    @property
    def purchases_per_buyer(self) -> int:
        return math.ceil(self.seconds / self.buy_every) + 1


#: A few seconds of every kind of agent (``--smoke``, and tests/e2e/test_load.py): small
#: works cut in 256 KiB pieces, four to a work as in the full run.
SMOKE = Settings(seconds=5, peers=20, servers=4, buyers=2, work_size=(600, 450))
SMOKE_ENV = {"PEERMARK_PIECE_SIZE": str(256 * 1024), "PEERMARK_TESTPAY_DELAY_SECONDS": "0"}


def smoke_options(**overrides: Any) -> launch.Options:
    """The platform for the smoke run: fewer processes to start (2 web workers, 1 task
    worker), and an 8 s metering grace: it must outlast a serving agent's outbox interval
    (5 s) with room for the submission, as production's 30 s does."""
    return launch.Options(**{"gunicorn_workers": 2, "worker_processes": 1,
                             "grace_seconds": 8, "extra_env": SMOKE_ENV, **overrides})


@dataclass
class RunResult:
    settings: Settings
    elapsed: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    expected: dict[str, Counter[str]] = field(default_factory=dict)
    after_errors: dict[str, Counter[str]] = field(default_factory=dict)
    after_requests: int = 0
    signed: int = 0
    accepted: int = 0
    recorded: int = 0
    missing: int = 0
    unexpected: int = 0
    recorded_twice: int = 0
    purchases: int = 0
    purchases_recorded: int = 0
    receipts: int = 0
    settled: int = 0
    unsettled: int = 0
    needs_review: int = 0
    books: list[str] | None = None  # None: no check_books command in this checkout
    log_problems: dict[str, int] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    started_at: str = ""
    work_bytes: int = 0  # the median work's master size
    piece_size: int = 0
    pieces: int = 0  # the median work's piece count
    driver_cpu: float = 0.0  # CPU seconds the load process used in the window
    platform_cpu: dict[str, float] = field(default_factory=dict)  # the same, per process
    machine_busy: float = 0.0  # CPU seconds the whole machine was busy in the window
    loop_lag_p99: float = 0.0  # how late its event loop woke, 99th percentile, seconds

    def request_errors(self) -> int:
        return sum(sum(c.values()) for c in (*self.errors.values(), *self.after_errors.values()))

    def failures(self) -> list[str]:
        """Everything that should not have happened; empty when the run was clean."""
        found = [f"{endpoint}: {what} x{n}" for source in (self.errors, self.after_errors)
                 for endpoint, counter in source.items() for what, n in counter.items()]
        if self.missing or self.unexpected or self.recorded_twice:
            found.append(f"orders: {self.missing} accepted but not recorded, "
                         f"{self.unexpected} recorded but never accepted, "
                         f"{self.recorded_twice} recorded twice")
        if self.purchases_recorded != self.purchases:
            found.append(f"purchases: {self.purchases} answered 201, "
                         f"{self.purchases_recorded} in the database")
        if self.unsettled:
            found.append(f"{self.unsettled} receipted purchases never settled")
        if self.needs_review:
            found.append(f"{self.needs_review} settlements disagree with their receipt")
        if self.books:
            found += [f"books: {problem}" for problem in self.books]
        found += [f"log: {what} x{n}" for what, n in self.log_problems.items()]
        found += [f"process died: {name}" for name in self.dead]
        return found


def machine_busy() -> float:
    """CPU seconds all of the machine's cores have been busy since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _wait(check: Callable[[], bool], *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def _settle_and_check(site: launch.Platform, load: Load, result: RunResult,
                      grace: int) -> None:
    """After the window: the final flush, each accepted order recorded once, the
    receipted purchases settled, the books."""
    def unsettled() -> int:
        return int(site.sql("SELECT count(*) FROM metering_receipt "
                            "WHERE settled_at IS NULL")[0][0])

    # Each receipt settles METERING_GRACE_SECONDS after it arrived (a task with that
    # countdown, and the beat's job every 10 s as a backstop); settling flushes first.
    _wait(lambda: unsettled() == 0, seconds=grace + 60)
    result.unsettled = unsettled()
    result.settled = int(site.sql("SELECT count(*) FROM purchases_purchase "
                                  "WHERE state = 'settled'")[0][0])
    result.needs_review = int(site.sql("SELECT count(*) FROM metering_receipt "
                                       "WHERE needs_review")[0][0])
    # The final flush, then the books: the two management commands in one process (each
    # Django start-up costs seconds on a busy machine).
    if BOOKS_COMMAND.exists():
        output = site.manage("shell", "-c", FLUSH_AND_CHECK_BOOKS)
        result.books = list(json.loads(output.strip().splitlines()[-1]))
    else:
        site.manage("flush_metering")
    accepted = {(str(uuid.UUID(licence)), nonce) for licence, nonce in load.metering.accepted}
    rows = site.sql("SELECT licence_id::text, nonce FROM metering_meteredorder")
    found = {(str(licence), str(nonce)) for licence, nonce in rows}
    result.accepted, result.recorded = len(accepted), len(found)
    result.missing, result.unexpected = len(accepted - found), len(found - accepted)
    result.recorded_twice = int(site.sql(
        "SELECT count(*) FROM (SELECT 1 FROM metering_meteredorder GROUP BY licence_id, nonce "
        "HAVING count(*) > 1) AS twice")[0][0])
    result.purchases_recorded = int(site.sql("SELECT count(*) FROM purchases_purchase")[0][0])
    result.log_problems = site.log_problems()
    result.dead = site.alive()


def run_once(settings: Settings, options: launch.Options, work_dir: Path) -> RunResult:
    """One run on a fresh platform: setup, the measured window, the checks."""
    result = RunResult(settings=settings)
    rng = random.Random(settings.seed)
    with launch.running(work_dir, options) as site:
        world = build(site, peers=settings.peers, servers=settings.servers,
                      buyers=settings.buyers, works=settings.purchases_per_buyer + 2,
                      work_size=settings.work_size,
                      purchases_per_buyer=settings.purchases_per_buyer, rng=rng)
        result.setup_seconds = world.setup_seconds
        manifests = sorted((w.manifest for w in world.works), key=lambda m: m.master_size)
        middle = manifests[len(manifests) // 2]
        result.work_bytes, result.piece_size = middle.master_size, middle.piece_size
        result.pieces = middle.piece_count
        load = Load(site.url, world, seconds=settings.seconds, buy_every=settings.buy_every,
                    acquire_every=settings.acquire_every, rng=rng)
        result.started_at = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        result.load_before = os.getloadavg()
        cpu_before, busy_before = site.cpu_seconds(), machine_busy()
        result.elapsed = asyncio.run(load.run())
        result.machine_busy = machine_busy() - busy_before
        result.platform_cpu = {name: used - cpu_before.get(name, 0.0)
                               for name, used in site.cpu_seconds().items()}
        result.load_after = os.getloadavg()
        result.latencies = dict(load.recorder.latencies)
        result.errors = {k: v for k, v in load.recorder.errors.items() if v}
        result.expected = {k: v for k, v in load.recorder.expected.items() if v}
        result.after_errors = {k: v for k, v in load.after.errors.items() if v}
        result.after_requests = sum(len(v) for v in load.after.latencies.values())
        result.signed = load.metering.signed
        result.driver_cpu = load.cpu_seconds
        result.loop_lag_p99 = percentile(load.lags, 0.99) if load.lags else 0.0
        result.purchases, result.receipts = load.sales.purchases, load.sales.receipts
        _settle_and_check(site, load, result, options.grace_seconds)
    return result


# --- the report -------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _spread(values: list[float], digits: int = 1) -> str:
    middle = median(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f}"
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def table(results: list[RunResult]) -> str:
    seconds = results[0].settings.seconds
    rows = ["| endpoint | requests per run | errors (all runs) | p50, ms | p99, ms | per second |",
            "|---|---:|---:|---:|---:|---:|"]
    every: list[list[float]] = [[] for _ in results]
    for endpoint in ENDPOINTS:
        runs = [r.latencies.get(endpoint, []) for r in results]
        if not any(runs):
            continue
        for collected, values in zip(every, runs, strict=True):
            collected.extend(values)
        errors = sum(sum(r.errors.get(endpoint, Counter()).values()) for r in results)
        rows.append(
            f"| `{endpoint}` | {_spread([len(v) for v in runs], 0)} | {errors} "
            f"| {_spread([percentile(v, 0.5) * 1000 for v in runs if v])} "
            f"| {_spread([percentile(v, 0.99) * 1000 for v in runs if v])} "
            f"| {_spread([len(v) / seconds for v in runs])} |")
    errors = sum(sum(sum(c.values()) for c in r.errors.values()) for r in results)
    rows.append(
        f"| all | {_spread([len(v) for v in every], 0)} | {errors} "
        f"| {_spread([percentile(v, 0.5) * 1000 for v in every])} "
        f"| {_spread([percentile(v, 0.99) * 1000 for v in every])} "
        f"| {_spread([len(v) / seconds for v in every])} |")
    return "\n".join(rows) + "\n"


def summary(results: list[RunResult], first: int = 1) -> str:
    lines = []
    for index, r in enumerate(results, first):
        books = ("no `check_books` command in this checkout" if r.books is None
                 else "books balance" if not r.books else f"{len(r.books)} book problems")
        lines.append(
            f"- run {index} ({r.started_at}; load average {r.load_before[0]:.2f} before, "
            f"{r.load_after[0]:.2f} after; CPU seconds in the window: the machine "
            f"{r.machine_busy:.0f} of {r.elapsed * (os.cpu_count() or 1):.0f}, the "
            f"platform {sum(r.platform_cpu.values()):.0f} ("
            + ", ".join(f"{k} {v:.0f}" for k, v in r.platform_cpu.items()) + "), "
            f"the load process {r.driver_cpu:.0f}, "
            f"its event loop woke {r.loop_lag_p99 * 1000:.0f} ms late at p99): "
            f"{r.purchases} purchases ({r.purchases / r.settings.seconds:.1f}/s of the "
            f"{r.settings.buyers / r.settings.buy_every:g}/s offered) and {r.receipts} "
            f"receipts; {r.signed} orders signed, {r.accepted} accepted, {r.recorded} "
            f"recorded after the final flush ({r.missing} missing, {r.unexpected} unexpected, "
            f"{r.recorded_twice} twice); {r.settled} purchases settled, {r.unsettled} "
            f"receipts unsettled, {r.needs_review} settlements flagged; {books}; "
            f"{r.request_errors()} request errors (the serving agents' last flush, "
            f"{r.after_requests} requests after the window, included); "
            f"{sum(r.log_problems.values())} tracebacks, errors or retries in the logs.")
    return "\n".join(lines) + "\n"


def report(results: list[RunResult], options: launch.Options) -> str:
    s = results[0].settings
    setup = {k: median([r.setup_seconds.get(k, 0.0) for r in results])
             for k in results[0].setup_seconds}
    server = f"gunicorn {options.gunicorn_workers} workers" + (
        f" x {options.gunicorn_threads} threads" if options.gunicorn_threads > 1
        else " (sync, the production command's)")
    failures = sorted({f for r in results for f in r.failures()})
    expected: Counter[str] = Counter()
    for r in results:
        for endpoint, counts in r.expected.items():
            for what, n in counts.items():
                expected[f"{endpoint}: {what}"] += n
    return (
        "`.venv/bin/python benchmarks/load/run.py` — "
        + (f"{len(results)} runs of {s.seconds:g} s, medians (range)" if len(results) > 1
           else f"1 run of {s.seconds:g} s")
        + f"; {machine()}; {results[0].started_at[:10]}. "
        f"One machine, loopback: PostgreSQL, a Redis of the run's own (AOF, everysec), "
        f"{server}, one Celery worker (prefork, "
        f"{options.worker_processes or os.cpu_count()} processes) and one beat; "
        f"the load from one more process on the same two cores: {s.peers} peer agents, "
        f"{s.servers} serving agents and {s.buyers} buyers as asyncio coroutines (not "
        f"{s.peers + s.servers + s.buyers} processes), each with its own httpx client.\n\n"
        f"Pacing as the agent's daemon: a heartbeat every 30 s; a start-up announce of "
        f"what each agent holds (coming online over the first 30 s) and an announce of "
        f"each work completed later (about one a minute per agent); serving agents submit "
        f"their signed orders every 5 s, at most 500 a batch. Each buyer buys a different "
        f"work every {s.buy_every:g} s (work page, purchase with an Idempotency-Key, sources, "
        f"one order per piece signed with the device key, receipt); works are "
        f"{s.work_size[0]}x{s.work_size[1]} noisy PNGs of about "
        f"{results[0].work_bytes / 1e6:.1f} MB, {results[0].pieces} pieces of "
        f"{results[0].piece_size // 1024} KiB. "
        f"Metering grace {options.grace_seconds} s"
        + (" (production's default)" if options.grace_seconds == 30 else "")
        + ": receipts settle during the window and after it. Setup (not measured), medians: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in setup.items()) + ".\n\n"
        + table(results)
        + "\nErrors: any non-2xx answer the agent does not expect, and any transport "
        "failure or timeout (30 s), plus orders a 200 reported as rejected or duplicate. "
        "Expected answers seen (all runs): "
        + (", ".join(f"`{what}` x{n}" for what, n in sorted(expected.items())) or "none")
        + ".\n\n"
        + summary(results)
        + ("\nNothing failed: zero errors, every accepted order recorded exactly once, "
           "every receipted purchase settled, the books balance.\n" if not failures
           else "\nFailures:\n" + "".join(f"- {f}\n" for f in failures))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--buyers", type=int, default=8)
    parser.add_argument("--buy-every", type=float, default=1.0)
    parser.add_argument("--grace", type=int, default=30,
                        help="PEERMARK_METERING_GRACE_SECONDS (production's default: 30)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--smoke", action="store_true",
                        help="5 s, 20 peers, 4 serving agents, 2 buyers, 1 run, not written")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("needs redis-server on PATH (each run starts its own)")
    settings = Settings(seconds=args.seconds, peers=args.peers, servers=args.servers,
                        buyers=args.buyers, buy_every=args.buy_every)
    pg_server = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    options = launch.Options(pg_server=pg_server, gunicorn_workers=args.workers,
                             gunicorn_threads=args.threads, grace_seconds=args.grace)
    runs = args.runs
    if args.smoke:
        settings, runs, options = SMOKE, 1, smoke_options(pg_server=pg_server)
    results = []
    for index in range(runs):
        with tempfile.TemporaryDirectory(prefix="peermark-load-") as work_dir:
            print(f"run {index + 1}/{runs}: setting up ...", flush=True)
            result = run_once(dataclasses.replace(settings, seed=index + 1), options,
                              Path(work_dir))
            if result.failures():  # keep the platform's logs to look into
                kept = WORK / f"load-{result.started_at[:16].replace(' ', '-')}"
                shutil.copytree(Path(work_dir) / "logs", kept / "logs")
                print(f"logs kept in {kept}", flush=True)
        results.append(result)
        print(summary([result], first=index + 1), flush=True)
    text = report(results, options)
    print(text)
    if not args.no_write and not args.smoke:
        write_section("Load", text)
    if any(r.failures() for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
