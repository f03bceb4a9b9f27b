"""Compute benchmark: the demo renderer under the sandbox against the same C built natively.

    .venv/bin/python benchmarks/compute/run.py

The whole image (256 x 192 by default) is rendered tile by tile, one process per tile on
both sides, timed the same way (wall clock around the whole run of tiles, outputs read
back and assembled):

* **native**: ``compute/demo/build.sh --native`` (clang -O2, the same flags as the
  module), one process per tile fed the tile's line on stdin;
* **sandbox**: ``compute.Sandbox.run`` per tile: a worker process that loads the
  compiled module from the cache and runs the unit with fuel metering, NaN
  canonicalisation, epoch interruption and the memory and output caps, exactly as a
  contributor's agent will.

Each of ``--rounds`` rounds runs both (alternating which goes first); the figures are
medians with their range, and the ratio (native time / sandbox time: the sandbox's speed
as a share of native) is the median of the rounds' ratios. Every round checks that the
sandbox's image equals the native one byte for byte.

Secondary rows, labelled as such: compiling the module (once per job per device), and
the same tiles run in this process (no worker processes) under the shipped engine
settings and under two diagnostic engines that are NOT the sandbox (one without NaN
canonicalisation, one plain wasmtime with no fuel, epoch or NaN canonicalisation), to
show where the time goes. The result replaces the section "Compute: the sandbox against
native" in docs/BENCHMARKS.md.
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
from compute.sandbox import make_engine, run_unit
from compute.unit import StopReason, Unit
from compute.wasi import GuestIO, ProcExit, RandomStream, random_seed
from compute.worker import Sandbox

SECTION = "Compute: the sandbox against native"
TARGET = 0.5
TILE_FUEL = 10**13  # far above what a tile needs: the benchmark measures, fuel never stops it


def render_native(binary: Path, width: int, height: int, cut: list[Tile], samples: int) -> bytes:
    rendered = []
    for tile in cut:
        completed = subprocess.run([str(binary)], input=tile_input(width, height, tile,
                                   samples=samples), capture_output=True, check=True)  # fmt: skip
        rendered.append((tile, completed.stdout))
    return assemble(width, height, rendered)


def render_sandbox(sandbox: Sandbox, width: int, height: int, cut: list[Tile],
                   samples: int) -> bytes:  # fmt: skip
    module = sandbox.prepare(RENDER_WASM.read_bytes())  # cached: a lookup after the first
    rendered = []
    for index, tile in enumerate(cut):
        unit = Unit(job_id="bench", unit_id=f"tile-{index}", fuel=TILE_FUEL,
                    input=tile_input(width, height, tile, samples=samples))  # fmt: skip
        result = sandbox.run(module, unit)
        if result.stop is not StopReason.EXIT or result.exit_status != 0:
            raise SystemExit(f"tile {index} failed in the sandbox: {result.stop} {result.detail}")
        rendered.append((tile, result.output))
    return assemble(width, height, rendered)


def render_in_process(
    width: int, height: int, cut: list[Tile], samples: int
) -> Callable[[], bytes]:
    """The shipped engine settings, in this process: no worker processes."""
    engine = make_engine()
    module = check_module(engine, RENDER_WASM.read_bytes(), max_bytes=Limits().module_bytes)

    def render() -> bytes:
        rendered = []
        for index, tile in enumerate(cut):
            unit = Unit(job_id="bench", unit_id=f"tile-{index}", fuel=TILE_FUEL,
                        input=tile_input(width, height, tile, samples=samples))  # fmt: skip
            rendered.append((tile, run_unit(engine, module, unit, Limits()).output))
        return assemble(width, height, rendered)

    return render


def render_diagnostic(width: int, height: int, cut: list[Tile], samples: int, *,
                      fuel: bool, epoch: bool, nan: bool) -> Callable[[], bytes]:  # fmt: skip
    """A diagnostic engine, NOT the sandbox: the same module and WASI surface with some of
    the sandbox's settings off, to show what each costs."""
    config = wasmtime.Config()
    config.consume_fuel = fuel
    config.epoch_interruption = epoch
    config.cranelift_nan_canonicalization = nan
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, RENDER_WASM.read_bytes())

    def render() -> bytes:
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
        return assemble(width, height, rendered)

    return render


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
        sandbox = Sandbox(Path(folder) / "cache-0")

        load = os.getloadavg()
        native_times, sandbox_times, ratios = [], [], []
        reference = b""
        for round_index in range(args.rounds):
            sides: list[tuple[str, Callable[[], bytes]]] = [
                ("native", lambda: render_native(native, args.width, args.height, cut,
                                                 args.samples)),
                ("sandbox", lambda: render_sandbox(sandbox, args.width, args.height, cut,
                                                   args.samples)),
            ]  # fmt: skip
            if round_index % 2:
                sides.reverse()
            measured = {}
            for name, action in sides:
                measured[name] = timed(action)
            (native_time, native_image), (sandbox_time, sandbox_image) = (
                measured["native"], measured["sandbox"])  # fmt: skip
            if sandbox_image != native_image:
                raise SystemExit("the sandbox's image differs from the native one")
            reference = native_image
            native_times.append(native_time)
            sandbox_times.append(sandbox_time)
            ratios.append(native_time / sandbox_time)
            share = native_time / sandbox_time
            print(f"round {round_index + 1}: native {native_time:.2f} s, "
                  f"sandbox {sandbox_time:.2f} s, {share:.2f} of native")  # fmt: skip

        secondary: dict[str, list[float]] = {}
        variants = {
            "the sandbox's engine in this process (no worker processes)":
                render_in_process(args.width, args.height, cut, args.samples),
            "diagnostic, not the sandbox: fuel and epoch, no NaN canonicalisation":
                render_diagnostic(args.width, args.height, cut, args.samples,
                                  fuel=True, epoch=True, nan=False),
            "diagnostic, not the sandbox: plain wasmtime (no fuel, epoch or NaN canonicalisation)":
                render_diagnostic(args.width, args.height, cut, args.samples,
                                  fuel=False, epoch=False, nan=False),
        }  # fmt: skip
        for label, render in variants.items():
            secondary[label] = []
            for _ in range(args.rounds):
                elapsed, image = timed(render)
                if image != reference:
                    raise SystemExit(f"{label}: the image differs from the native one")
                secondary[label].append(elapsed)
            print(f"{label}: {spread(secondary[label])}")

    ratio = statistics.median(ratios)
    native_median = statistics.median(native_times)
    verdict = "met" if ratio >= TARGET else "MISSED"
    rows = [
        f"| native (clang -O2), one process a tile | {spread(native_times)} | 1.00 | |",
        f"| **sandbox**, one worker process a tile (fuel, NaN canonicalisation, epoch, caps) "
        f"| {spread(sandbox_times)} | **{ratio:.2f}** ({min(ratios):.2f}-{max(ratios):.2f}) "
        f"| {TARGET:.1f}: {verdict} |",
    ]
    for label, values in secondary.items():
        rows.append(f"| secondary: {label} | {spread(values)} | "
                    f"{native_median / statistics.median(values):.2f} | |")  # fmt: skip
    medians = [statistics.median(values) for values in secondary.values()]
    in_process, no_nan, plain = medians
    worker_ms = 1000 * (statistics.median(sandbox_times) - in_process) / len(cut)
    nan_factor, fuel_factor = in_process / no_nan, no_nan / plain
    plain_share = native_median / plain
    command = "`.venv/bin/python benchmarks/compute/run.py`"
    defaults = (f"`--width {args.width} --height {args.height} --tile {args.tile} "
                f"--samples {args.samples} --rounds {args.rounds}`")  # fmt: skip
    body = f"""
Run with {command} ({defaults}).
The demo renderer (`compute/demo/render.c`) renders the whole {args.width} x {args.height}
image at {args.samples} samples a pixel, in {len(cut)} tiles of {args.tile} x {args.tile},
one process a tile on both sides, timed around the whole run of tiles with the outputs
read back and assembled. Every round
checked that the sandbox's image equals the native one byte for byte (SHA-256
`{hashlib.sha256(reference).hexdigest()[:16]}...`). Medians of {args.rounds} rounds, range
in brackets; the ratio is native time / sandbox time (the sandbox's speed as a share of
native), the median of the rounds' ratios.
Machine: {machine()}; load average at the start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}
(shared with other work); wasmtime {metadata.version("wasmtime")}, {clang}; {today()}.

| run | time for the image | share of native speed | target |
| --- | ---: | ---: | ---: |
{chr(10).join(rows)}

Compiling the module (`Sandbox.prepare`: a worker process checks and compiles it with
Cranelift and caches the result; once per job per device, not per unit):
{spread(compile_times)}. Like the native build, it is not in the times above.

Where the time goes (medians of the rows above):

- the worker processes: {worker_ms:.0f} ms a tile (the worker row less the in-process
  row, over {len(cut)} tiles): starting Python, loading wasmtime and the cached compiled
  module, and the pipes;
- NaN canonicalisation: x{nan_factor:.2f} (the in-process row against the first
  diagnostic row): Cranelift follows every floating-point operation with a check and a
  select, and a ray tracer is little but floating point;
- fuel metering and epoch checks: x{fuel_factor:.2f} (the two diagnostic rows);
- WebAssembly itself: plain wasmtime runs this C at {plain_share:.2f} of the native
  build's speed.

The secondary rows run after the paired rounds, not interleaved with native ones, so a
change of load on the shared machine moves their shares more than the main row's.
The target is missed because of NaN canonicalisation, which the sandbox keeps on purpose:
without it two devices on different processors can disagree (docs/COMPUTE.md, "Speed").
"""
    if args.no_write:
        print(body)
    else:
        write_section(SECTION, body)
        print(f"wrote the section {SECTION!r} of docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
