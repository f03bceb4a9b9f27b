"""Compute benchmark: the demo renderer under the sandbox against the same C built natively.

    .venv/bin/python benchmarks/compute/run.py

The whole image (256 x 192 by default) is rendered tile by tile, one unit (one native
process) a tile, timed the same way (wall clock around the whole run of tiles, outputs
read back and assembled):

* **native**: ``compute/demo/build.sh --native`` (clang -O2, the same flags as the
  module), one process per tile fed the tile's line on stdin;
* **sandbox**: ``compute.Sandbox.run`` per tile with kept workers
  (``reuse_workers=True``), exactly as a contributor's agent runs units: one worker
  process, started for the image (its start-up is in the time), loads the compiled module
  (with its NaN guards, ``compute.nan_guard``) from the cache for each tile and runs it
  with fuel metering, epoch interruption and the memory and output caps, from a fresh
  engine, store and instance.

Secondary rows, labelled as such: compiling the module (once per job per device), the
tiles in a fresh worker process each (``Sandbox``'s default, the path before kept
workers), and the same tiles run in this process (no worker processes) under the shipped engine
settings and under three diagnostic set-ups that are NOT the sandbox (the module
without its NaN guards; Cranelift's NaN canonicalisation instead of the guards, as
the sandbox's profile 1 ran it; plain wasmtime with no fuel, epoch or NaN handling), to
show where the time goes, and the fuel the guards add.

Each of ``--rounds`` rounds runs every row once, each row going first in turn, so that a
change of load on a shared machine falls on all rows alike; a row's share of native
speed is native time / its time in the same round, and the figures are medians over the
rounds with their range. Every round checks that each row's image equals the native one
byte for byte. The result replaces the section "Compute: the sandbox against native" in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import wasmtime

from benchmarks.common import machine, today, write_section
from compute.demo import BUILD_SCRIPT, RENDER_WASM, Tile, assemble, tile_input, tiles
from compute.limits import Limits
from compute.module_check import check_module
from compute.nan_guard import guard_nans
from compute.sandbox import make_engine, run_unit
from compute.unit import StopReason, Unit
from compute.wasi import GuestIO, ProcExit, RandomStream, random_seed
from compute.worker import Sandbox

SECTION = "Compute: the sandbox against native"
NATIVE = "native"
SANDBOX = "sandbox"
FRESH = "a fresh worker process a tile (Sandbox's default: reuse_workers=False)"
IN_PROCESS = "the sandbox's engine and NaN guards in this process (no worker processes)"
UNGUARDED = "diagnostic, not the sandbox: fuel and epoch, the module without NaN guards"
CANONICALISING = ("diagnostic, not the sandbox: fuel and epoch, Cranelift's NaN "
                  "canonicalisation instead of the guards (profile 1)")  # fmt: skip
PLAIN = "diagnostic, not the sandbox: plain wasmtime (no fuel, epoch or NaN handling)"
TARGET = 0.5
TINY_REPEATS = 10  # the tiny unit's runs a path (a kept worker: that many workers, squared)
TILE_FUEL = 10**13  # far above what a tile needs: the benchmark measures, fuel never stops it


def render_native(binary: Path, width: int, height: int, cut: list[Tile], samples: int) -> bytes:
    rendered = []
    for tile in cut:
        completed = subprocess.run([str(binary)], input=tile_input(width, height, tile,
                                   samples=samples), capture_output=True, check=True)  # fmt: skip
        rendered.append((tile, completed.stdout))
    return assemble(width, height, rendered)


def render_sandbox(cache: Path, width: int, height: int, cut: list[Tile], samples: int, *,
                   reuse_workers: bool) -> bytes:  # fmt: skip
    """The tiles through ``Sandbox.run``. With ``reuse_workers`` (the agent's way) a new
    sandbox for the image, so that its one worker's start-up is in the time."""
    with Sandbox(cache, reuse_workers=reuse_workers) as sandbox:
        module = sandbox.prepare(RENDER_WASM.read_bytes())  # cached: a lookup
        rendered = []
        for index, tile in enumerate(cut):
            unit = Unit(job_id="bench", unit_id=f"tile-{index}", fuel=TILE_FUEL,
                        input=tile_input(width, height, tile, samples=samples))  # fmt: skip
            result = sandbox.run(module, unit)
            if result.stop is not StopReason.EXIT or result.exit_status != 0:
                raise SystemExit(f"tile {index} failed in the sandbox: {result.stop} "
                                 f"{result.detail}")  # fmt: skip
            rendered.append((tile, result.output))
    return assemble(width, height, rendered)


def render_in_process(
    width: int, height: int, cut: list[Tile], samples: int, fuel_used: list[int]
) -> Callable[[], bytes]:
    """The shipped engine settings and module check (NaN guards), in this process: no
    worker processes. Each render appends the fuel its tiles used to ``fuel_used``."""
    engine = make_engine()
    module = check_module(engine, RENDER_WASM.read_bytes(), max_bytes=Limits().module_bytes)

    def render() -> bytes:
        rendered, fuel = [], 0
        for index, tile in enumerate(cut):
            unit = Unit(job_id="bench", unit_id=f"tile-{index}", fuel=TILE_FUEL,
                        input=tile_input(width, height, tile, samples=samples))  # fmt: skip
            result = run_unit(engine, module, unit, Limits())
            rendered.append((tile, result.output))
            fuel += result.fuel_consumed
        fuel_used.append(fuel)
        return assemble(width, height, rendered)

    return render


def render_diagnostic(width: int, height: int, cut: list[Tile], samples: int, *,
                      fuel: bool, epoch: bool, nan: bool,
                      fuel_used: list[int] | None = None) -> Callable[[], bytes]:  # fmt: skip
    """A diagnostic set-up, NOT the sandbox: the module as submitted (no NaN guards) and
    the same WASI surface, on an engine with fuel, epoch and Cranelift's NaN
    canonicalisation each on or off, to show what each costs."""
    config = wasmtime.Config()
    config.consume_fuel = fuel
    config.epoch_interruption = epoch
    config.cranelift_nan_canonicalization = nan
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, RENDER_WASM.read_bytes())

    def render() -> bytes:
        used = 0
        rendered = []
        for index, tile in enumerate(cut):
            store = wasmtime.Store(engine)
            if fuel:
                store.set_fuel(TILE_FUEL)
            if epoch:
                store.set_epoch_deadline(1)
            guest = GuestIO(stdin=tile_input(width, height, tile, samples=samples), args=("job",),
                            random=RandomStream(random_seed("bench", f"tile-{index}")),
                            output_cap=1 << 30, stderr_tail_cap=4096)  # fmt: skip
            linker = wasmtime.Linker(engine)
            guest.define(linker)
            instance = linker.instantiate(store, module)
            with contextlib.suppress(ProcExit):
                instance.exports(store)["_start"](store)  # type: ignore[operator]
            rendered.append((tile, bytes(guest.output)))
            if fuel:
                used += TILE_FUEL - store.get_fuel()
        if fuel_used is not None:
            fuel_used.append(used)
        return assemble(width, height, rendered)

    return render


def unit_overheads(cache: Path, width: int, height: int, repeats: int) -> dict[str, float]:
    """Milliseconds (medians) one tiny unit (a 1 x 1 tile, one sample) takes: in this
    process, through a kept worker, through a fresh worker; and a kept worker's first
    unit (its start-up). Nearly all of it is the path's own cost, not the unit's work."""
    tiny = tile_input(width, height, Tile(0, 0, 1, 1), samples=1)
    engine = make_engine()
    compiled = check_module(engine, RENDER_WASM.read_bytes(), max_bytes=Limits().module_bytes)

    def unit(n: int) -> Unit:
        return Unit(job_id="bench", unit_id=f"tiny-{n}", fuel=TILE_FUEL, input=tiny)

    def ms(action: Callable[..., object], *args: object) -> float:
        start = time.perf_counter()
        action(*args)
        return 1000 * (time.perf_counter() - start)

    out: dict[str, list[float]] = {"in-process": [], "kept": [], "fresh": [], "first": []}
    fresh = Sandbox(cache)
    module = fresh.prepare(RENDER_WASM.read_bytes())
    for n in range(repeats):
        out["in-process"].append(ms(run_unit, engine, compiled, unit(n), Limits()))
        out["fresh"].append(ms(fresh.run, module, unit(n)))
        with Sandbox(cache, reuse_workers=True) as kept:
            out["first"].append(ms(kept.run, module, unit(n)))
            out["kept"] += [ms(kept.run, module, unit(m)) for m in range(repeats)]
    return {name: statistics.median(values) for name, values in out.items()}


def timed(action: Callable[[], bytes]) -> tuple[float, bytes]:
    start = time.perf_counter()
    image = action()
    return time.perf_counter() - start, image


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--tile", type=int, default=64, help="tile side in pixels")
    parser.add_argument("--samples", type=int, default=256, help="samples per pixel")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print, do not update the docs")
    args = parser.parse_args()
    cut = tiles(args.width, args.height, args.tile, args.tile)

    with tempfile.TemporaryDirectory(prefix="pm-bench-compute-") as folder:
        native = Path(folder) / "render-native"
        build = subprocess.run([str(BUILD_SCRIPT), "--native", str(native)], capture_output=True,
                               text=True, check=False)  # fmt: skip
        if build.returncode:
            raise SystemExit(f"cannot build the native renderer:\n{build.stderr}")
        clang = subprocess.run(["clang", "--version"], capture_output=True, text=True,
                               check=False).stdout.splitlines()[0]  # fmt: skip

        compile_times = []
        for round_index in range(args.rounds):
            fresh = Sandbox(Path(folder) / f"cache-{round_index}")
            start = time.perf_counter()
            fresh.prepare(RENDER_WASM.read_bytes())
            compile_times.append(time.perf_counter() - start)
        cache = Path(folder) / "cache-0"

        guarded_fuel: list[int] = []
        unguarded_fuel: list[int] = []
        runs: dict[str, Callable[[], bytes]] = {
            NATIVE: lambda: render_native(native, args.width, args.height, cut, args.samples),
            SANDBOX: lambda: render_sandbox(cache, args.width, args.height, cut, args.samples,
                                            reuse_workers=True),
            FRESH: lambda: render_sandbox(cache, args.width, args.height, cut, args.samples,
                                          reuse_workers=False),
            IN_PROCESS: render_in_process(args.width, args.height, cut, args.samples,
                                          guarded_fuel),
            UNGUARDED: render_diagnostic(args.width, args.height, cut, args.samples, fuel=True,
                                         epoch=True, nan=False, fuel_used=unguarded_fuel),
            CANONICALISING: render_diagnostic(args.width, args.height, cut, args.samples,
                                              fuel=True, epoch=True, nan=True),
            PLAIN: render_diagnostic(args.width, args.height, cut, args.samples,
                                     fuel=False, epoch=False, nan=False),
        }  # fmt: skip
        load = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name in runs}
        reference = b""
        for round_index in range(args.rounds):
            names = list(runs)
            shift = round_index % len(names)  # each run goes first in turn
            measured = {}
            for name in names[shift:] + names[:shift]:
                measured[name] = timed(runs[name])
            reference = measured[NATIVE][1]
            for name, (elapsed, image) in measured.items():
                if image != reference:
                    raise SystemExit(f"{name}: the image differs from the native one")
                times[name].append(elapsed)
            share = measured[NATIVE][0] / measured[SANDBOX][0]
            print(f"round {round_index + 1}: " + ", ".join(
                f"{name.split(',')[0]} {elapsed:.2f} s" for name, (elapsed, _) in measured.items()
            ) + f"; sandbox {share:.2f} of native", flush=True)  # fmt: skip
        overhead = unit_overheads(cache, args.width, args.height, repeats=TINY_REPEATS)
        print("one tiny unit, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in overhead.items()))

    def per_round(numerator: str, denominator: str) -> list[float]:
        """The ratio of two runs' times in each round (both ran in it, under its load)."""
        return [a / b for a, b in zip(times[numerator], times[denominator], strict=True)]

    def share(name: str) -> str:
        values = per_round(NATIVE, name)
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    def factor(slower: str, faster: str) -> float:
        return statistics.median(per_round(slower, faster))

    ratios = per_round(NATIVE, SANDBOX)
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= TARGET else "MISSED"
    rows = [
        f"| native (clang -O2), one process a tile | {spread(times[NATIVE])} | 1.00 | |",
        f"| **sandbox** as the agent runs it: a kept worker process, started for the image, "
        f"a fresh engine, store and instance a tile (fuel, NaN guards, epoch, caps) "
        f"| {spread(times[SANDBOX])} | **{share(SANDBOX)}** | {TARGET:.1f}: {verdict} |",
    ]
    for name in (FRESH, IN_PROCESS, UNGUARDED, CANONICALISING, PLAIN):
        rows.append(f"| secondary: {name} | {spread(times[name])} | {share(name)} | |")
    def per_tile_ms(slower: str, faster: str) -> float:
        return 1000 * statistics.median(
            [(a - b) / len(cut) for a, b in zip(times[slower], times[faster], strict=True)])

    worker_ms = per_tile_ms(SANDBOX, IN_PROCESS)
    fresh_ms = per_tile_ms(FRESH, IN_PROCESS)
    native_tile_ms = 1000 * statistics.median(times[NATIVE]) / len(cut)
    guard_factor, canon_factor = factor(IN_PROCESS, UNGUARDED), factor(CANONICALISING, UNGUARDED)
    fuel_factor = factor(UNGUARDED, PLAIN)
    plain_share = statistics.median(per_round(NATIVE, PLAIN))
    guards = guard_nans(RENDER_WASM.read_bytes()).guards
    guard_fuel = 100 * (guarded_fuel[0] - unguarded_fuel[0]) / unguarded_fuel[0]
    paths = (f"a tiny unit took {overhead['kept']:.1f} ms through a kept worker and "
             f"{overhead['in-process']:.1f} ms in this process, where a fresh worker took "
             f"{overhead['fresh']:.0f} ms, against {native_tile_ms:.0f} ms of native work a "
             f"tile here")  # fmt: skip
    if ratio >= TARGET:
        closing = (f"The target is met: {paths}. What remains between the sandbox and native "
                   f"is mostly fuel metering (x{fuel_factor:.2f}), the meter customers pay "
                   f"by.")  # fmt: skip
    else:
        closing = (f"The target is missed: {paths}; fuel metering costs x{fuel_factor:.2f} "
                   f"and the NaN guards x{guard_factor:.2f}. See docs/COMPUTE.md, "
                   f"\"Speed\".")  # fmt: skip
    command = "`.venv/bin/python benchmarks/compute/run.py`"
    defaults = (f"`--width {args.width} --height {args.height} --tile {args.tile} "
                f"--samples {args.samples} --rounds {args.rounds}`")  # fmt: skip
    body = f"""
Run with {command} ({defaults}).
The demo renderer (`compute/demo/render.c`) renders the whole {args.width} x {args.height}
image at {args.samples} samples a pixel, in {len(cut)} tiles of {args.tile} x {args.tile},
one unit a tile (natively one process a tile; in the sandbox as the agent runs units,
one kept worker process started for the image), timed around the whole run of tiles with
the outputs read back and assembled. Every round
checked that the sandbox's image equals the native one byte for byte (SHA-256
`{hashlib.sha256(reference).hexdigest()[:16]}...`). Medians of {args.rounds} rounds, range
in brackets. Every round runs all {len(runs)} rows, each going first in turn, so that a
change of load on the shared machine falls on all of them; a row's share of native speed is
native time / its time in the same round, the median (and range) over the rounds.
Machine: {machine()}; load average at the start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}
(shared with other work); wasmtime {metadata.version("wasmtime")}, {clang}; {today()}.

| run | time for the image | share of native speed | target |
| --- | ---: | ---: | ---: |
{chr(10).join(rows)}

Compiling the module (`Sandbox.prepare`: a worker process checks it, adds its NaN
guards and compiles it with Cranelift, and caches the result; once per job per device,
not per unit):
{spread(compile_times)}. Like the native build, it is not in the times above.

Where the time goes (medians over the rounds of the ratios between rows):

- the worker path, measured apart on a tiny unit (a 1 x 1 tile at one sample, after the
  rounds; medians of {TINY_REPEATS} runs a path, {TINY_REPEATS**2} through
  {TINY_REPEATS} kept workers): {overhead["in-process"]:.1f} ms in this
  process, {overhead["kept"]:.1f} ms through a kept worker (the request and answer over
  the pipes, a new engine, the cached compiled module loaded, a new store and instance),
  {overhead["fresh"]:.1f} ms through a fresh worker (starting Python, loading wasmtime
  and the module, every unit); a kept worker's first unit, which starts it,
  {overhead["first"]:.1f} ms. In the rounds, the sandbox row less the in-process row
  comes to {worker_ms:.0f} ms a tile with a kept worker (its one start-up spread over
  {len(cut)} tiles; an agent's worker serves up to 100 units) and {fresh_ms:.0f} ms with
  a fresh worker a tile;
- the NaN guards: x{guard_factor:.2f} in time (the in-process row against the first
  diagnostic row: the same engine, the module without its guards), and
  {guard_fuel:+.1f}% in fuel ({guarded_fuel[0]:,} against {unguarded_fuel[0]:,} units for
  the image; six instructions a guard, the same on every device); the demo module has
  {guards} guards, at its f64 stores and reinterprets;
- Cranelift's NaN canonicalisation, which the guards replace (profile 1): x{canon_factor:.2f}
  (the second diagnostic row against the first): it follows every floating-point
  operation with a check and a select, and a ray tracer is little but floating point;
- fuel metering and epoch checks: x{fuel_factor:.2f} (the first and last diagnostic rows);
- WebAssembly itself: plain wasmtime runs this C at {plain_share:.2f} of the native
  build's speed.

{closing}
"""
    if args.no_write:
        print(body)
    else:
        write_section(SECTION, body)
        print(f"wrote the section {SECTION!r} of docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
