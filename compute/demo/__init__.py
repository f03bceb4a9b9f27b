"""The demo job: a ray tracer (``render.c``) that renders one tile of an image per unit.

``render.wasm`` is the module built from ``render.c`` by ``build.sh`` (Debian's clang,
lld and wasi-libc; the build is reproducible, and ``render.wasm.sha256`` records the
hash of the checked-in module). A unit's input is one line naming the image and the
tile (``tile_input``); its output is the tile's raw RGB bytes, which ``assemble`` puts
back into the whole image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RENDER_SOURCE = HERE / "render.c"
RENDER_WASM = HERE / "render.wasm"
RENDER_WASM_SHA256 = HERE / "render.wasm.sha256"
BUILD_SCRIPT = HERE / "build.sh"
MAX_SIDE = 4096  # as render.c
MAX_SAMPLES = 1024  # as render.c
BYTES_PER_PIXEL = 3


@dataclass(frozen=True)
class Tile:
    """A rectangle of the image: its top-left corner and size, in pixels."""

    x: int
    y: int
    width: int
    height: int


def tiles(width: int, height: int, tile_width: int, tile_height: int) -> list[Tile]:
    """Cover a ``width`` x ``height`` image with tiles, row by row; edge tiles are smaller."""
    for name, value in (("width", width), ("height", height),
                        ("tile_width", tile_width), ("tile_height", tile_height)):  # fmt: skip
        if type(value) is not int or not 1 <= value <= MAX_SIDE:
            raise ValueError(f"{name} must be an integer from 1 to {MAX_SIDE}")
    return [
        Tile(x, y, min(tile_width, width - x), min(tile_height, height - y))
        for y in range(0, height, tile_height)
        for x in range(0, width, tile_width)
    ]


def tile_input(width: int, height: int, tile: Tile, *, samples: int) -> bytes:
    """The unit's standard input for ``tile`` of a ``width`` x ``height`` image."""
    if type(samples) is not int or not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be an integer from 1 to {MAX_SAMPLES}")
    fields = (width, height, tile.x, tile.y, tile.width, tile.height, samples)
    return ("PMRT1 " + " ".join(str(f) for f in fields) + "\n").encode("ascii")


def assemble(width: int, height: int, rendered: Iterable[tuple[Tile, bytes]]) -> bytes:
    """The whole image's raw RGB from its tiles; every pixel must be covered once."""
    image = bytearray(width * height * BYTES_PER_PIXEL)
    covered = 0
    for tile, pixels in rendered:
        row_bytes = tile.width * BYTES_PER_PIXEL
        if len(pixels) != row_bytes * tile.height:
            raise ValueError(f"the tile at ({tile.x}, {tile.y}) has {len(pixels)} bytes, "
                             f"not {row_bytes * tile.height}")  # fmt: skip
        for row in range(tile.height):
            start = ((tile.y + row) * width + tile.x) * BYTES_PER_PIXEL
            image[start : start + row_bytes] = pixels[row * row_bytes : (row + 1) * row_bytes]
        covered += tile.width * tile.height
    if covered != width * height:
        raise ValueError("the tiles do not cover the image exactly")
    return bytes(image)
