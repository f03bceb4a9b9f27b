"""The demo job: the ray tracer's tiles, rendered under the sandbox, are the native render.

The expected pixels never come from the sandbox itself: they are a native build of the
same C (clang -O2, built here when clang is present) and a reference PNG that a native
build made, checked in with the hash of its pixels.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from wasmtime import Engine

from compute.demo import (
    BUILD_SCRIPT,
    RENDER_WASM,
    RENDER_WASM_SHA256,
    Tile,
    assemble,
    tile_input,
    tiles,
)
from compute.unit import StopReason, Unit
from compute.worker import Sandbox

from .support import run

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_PNG = DATA / "render-64x48-4spp.png"
REFERENCE_SHA256 = DATA / "render-64x48-4spp.rgb.sha256"
REFERENCE = {"width": 64, "height": 48, "samples": 4}
TILE_FUEL = 2_000_000_000


def toolchain_missing(*, wasm: bool) -> str | None:
    """Why the demo cannot be built here (build.sh says what to install), or None."""
    if shutil.which("clang") is None:
        return "clang is not installed (apt-get install clang)"
    if not wasm:
        return None
    check = subprocess.run([str(BUILD_SCRIPT), "--check"], capture_output=True, text=True,
                           timeout=60, check=False)  # fmt: skip
    if check.returncode == 0:
        return None
    return check.stderr.strip() or f"build.sh --check exited with {check.returncode}"


@pytest.fixture(scope="module")
def native_renderer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same C built natively with clang -O2 (and the same flags) by build.sh."""
    reason = toolchain_missing(wasm=False)
    if reason:
        pytest.skip(reason)
    binary = tmp_path_factory.mktemp("native") / "render"
    subprocess.run([str(BUILD_SCRIPT), "--native", str(binary)], check=True, timeout=120)
    return binary


def render_natively(binary: Path, width: int, height: int, samples: int) -> bytes:
    header = tile_input(width, height, Tile(0, 0, width, height), samples=samples)
    completed = subprocess.run([str(binary)], input=header, capture_output=True, check=True,
                               timeout=60)  # fmt: skip
    return completed.stdout


def render_in_sandbox(sandbox: Sandbox, width: int, height: int, tile_side: tuple[int, int],
                      samples: int) -> bytes:  # fmt: skip
    module = sandbox.prepare(RENDER_WASM.read_bytes())
    rendered = []
    for index, tile in enumerate(tiles(width, height, *tile_side)):
        unit = Unit(job_id="demo", unit_id=f"tile-{index}", fuel=TILE_FUEL,
                    input=tile_input(width, height, tile, samples=samples))  # fmt: skip
        result = sandbox.run(module, unit)
        assert (result.stop, result.exit_status) == (StopReason.EXIT, 0), result.detail
        rendered.append((tile, result.output))
    return assemble(width, height, rendered)


def reference_pixels() -> bytes:
    with Image.open(REFERENCE_PNG) as image:
        return image.convert("RGB").tobytes()


def test_the_checked_in_module_matches_its_recorded_hash() -> None:
    recorded = RENDER_WASM_SHA256.read_text().strip()
    assert hashlib.sha256(RENDER_WASM.read_bytes()).hexdigest() == recorded


def test_the_reference_image_matches_its_recorded_pixel_hash() -> None:
    assert hashlib.sha256(reference_pixels()).hexdigest() == REFERENCE_SHA256.read_text().strip()


def test_tiles_rendered_in_the_sandbox_assemble_to_the_reference_image(sandbox: Sandbox) -> None:
    image = render_in_sandbox(sandbox, 64, 48, (32, 24), samples=4)
    assert image == reference_pixels()


def test_the_reference_image_is_what_the_native_build_renders(native_renderer: Path) -> None:
    assert render_natively(native_renderer, **REFERENCE) == reference_pixels()


def test_tiles_rendered_in_the_sandbox_equal_the_native_render_byte_for_byte(
    sandbox: Sandbox, native_renderer: Path
) -> None:
    # Uneven tiles (the right and bottom ones are narrower) and another sample count.
    expected = render_natively(native_renderer, 80, 60, samples=3)
    assert render_in_sandbox(sandbox, 80, 60, (48, 40), samples=3) == expected


def test_a_tile_costs_the_same_fuel_every_time(engine: Engine) -> None:
    header = tile_input(64, 48, Tile(16, 8, 16, 16), samples=2)
    first = run(engine, RENDER_WASM.read_bytes(), stdin=header, fuel=TILE_FUEL)
    second = run(engine, RENDER_WASM.read_bytes(), stdin=header, fuel=TILE_FUEL)
    assert first.stop is StopReason.EXIT
    assert len(first.output) == 16 * 16 * 3
    assert first.agreement == second.agreement


@pytest.mark.parametrize(
    "header",
    [b"", b"PMRT1 64 48 0 0 64 48 4", b"PMRT1 64 48 0 0 65 48 4\n", b"PMRT1 64 48 0 0 64 48 0\n",
     b"PMRT1 064 48 0 0 64 48 4\n", b"PMRT2 64 48 0 0 64 48 4\n",
     b"PMRT1 64 48 0 0 64 48 4\nmore"],
)  # fmt: skip
def test_the_renderer_refuses_a_bad_header_with_exit_status_2(
    engine: Engine, header: bytes
) -> None:
    result = run(engine, RENDER_WASM.read_bytes(), stdin=header, fuel=TILE_FUEL)
    assert (result.stop, result.exit_status, result.output) == (StopReason.EXIT, 2, b"")
    assert b"bad input" in result.stderr_tail


def test_tiles_cover_the_image_once_and_assemble_back() -> None:
    cut = tiles(5, 3, 2, 2)
    assert cut == [Tile(0, 0, 2, 2), Tile(2, 0, 2, 2), Tile(4, 0, 1, 2),
                   Tile(0, 2, 2, 1), Tile(2, 2, 2, 1), Tile(4, 2, 1, 1)]  # fmt: skip
    image = bytes(range(45))  # 5 x 3 pixels, 3 bytes each

    def crop(tile: Tile) -> bytes:
        rows = (image[((tile.y + r) * 5 + tile.x) * 3:((tile.y + r) * 5 + tile.x + tile.width) * 3]
                for r in range(tile.height))  # fmt: skip
        return b"".join(rows)

    assert assemble(5, 3, [(tile, crop(tile)) for tile in cut]) == image
    with pytest.raises(ValueError, match="cover"):
        assemble(5, 3, [(tile, crop(tile)) for tile in cut[:-1]])
    with pytest.raises(ValueError, match="bytes"):
        assemble(5, 3, [(cut[0], b"short")])


def test_a_tile_input_is_one_line_the_renderer_reads() -> None:
    assert tile_input(256, 192, Tile(64, 128, 64, 64), samples=16) == (
        b"PMRT1 256 192 64 128 64 64 16\n"
    )
    with pytest.raises(ValueError, match="samples"):
        tile_input(256, 192, Tile(0, 0, 1, 1), samples=0)
    with pytest.raises(ValueError, match="tile_width"):
        tiles(256, 192, 0, 64)


@pytest.mark.slow
def test_the_build_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    reason = toolchain_missing(wasm=True)
    if reason:
        pytest.skip(f"cannot rebuild the demo module here: {reason}")
    rebuilt = tmp_path / "render.wasm"
    subprocess.run([str(BUILD_SCRIPT), "--wasm", str(rebuilt)], check=True, timeout=300)
    assert rebuilt.read_bytes() == RENDER_WASM.read_bytes()
