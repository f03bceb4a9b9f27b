"""The demo job: the ray tracer (``compute.demo``), one tile of a picture per unit.

Used by the portal's "render a picture" form, the demo data, the benchmarks and the
end-to-end tests, so that they all submit the same kind of job the same way.
"""

from __future__ import annotations

from compute.demo import RENDER_WASM, tile_input, tiles
from exchange.accounts.models import User
from exchange.compute_market.models import ComputeModule
from exchange.compute_market.submission import JobSpec, UnitSpec, module_store

# Measured: 2,200-3,300 fuel per pixel and sample (tests/compute, this module's tests);
# the cap leaves room for the brightest tiles, and the budget's unspent part returns.
FUEL_PER_PIXEL_SAMPLE = 8_000
FUEL_PER_TILE = 2_000_000


def demo_module(user: User) -> ComputeModule:
    return module_store(user=user, wasm=RENDER_WASM.read_bytes())


def demo_render_spec(*, module: ComputeModule, width: int, height: int, tile: int,
                     samples: int, currency: str, price_per_tfuel_minor: int,
                     name: str = "", replication: int = 2, unit_seconds: int = 120) -> JobSpec:
    """A job rendering a ``width`` x ``height`` picture in ``tile`` x ``tile`` tiles."""
    cover = tiles(width, height, tile, tile)
    units = [UnitSpec(input=tile_input(width, height, t, samples=samples),
                      fuel=FUEL_PER_TILE + FUEL_PER_PIXEL_SAMPLE * t.width * t.height * samples,
                      label=f"tile-{t.x}-{t.y}") for t in cover]
    render = {"width": width, "height": height, "samples": samples,
              "tiles": {str(i): [t.x, t.y, t.width, t.height] for i, t in enumerate(cover)}}
    presentation: dict[str, object] = {"render": render}
    return JobSpec(name=name or f"Ray-traced picture {width}x{height}, {samples} samples",
                   module_sha256=module.sha256, units=units, currency=currency,
                   price_per_tfuel_minor=price_per_tfuel_minor, replication=replication,
                   unit_seconds=unit_seconds, memory_bytes=64 * 2**20,
                   output_bytes=tile * tile * 3, presentation=presentation)
