"""The picture mark: the image mark's chips on a grid proportional to the frame, the same
in every frame, so evidence adds up over time.

Why a canonical grid. A frame is resized (bilinear, antialiased) to a canonical picture
`CANONICAL_ROWS` pixels high and as wide as the frame's aspect ratio gives (`grid_cols`),
and the image library marks that picture's luma with its own functions: the texture mask
(`watermark.mask`), the keyed layout (`watermark.pattern`), the codeword
(`watermark.payload`) and host cancellation (`watermark.embed.mark_cells`). The change
(`watermark.grid.spread`) is resized back to the frame and added to its luma plane (Y of
Y'CbCr, chroma untouched). Every frame carries the same chip signs, only the amplitudes
follow each frame's texture. A reader resizes any copy's luma to the same canonical
picture, so a downscaled copy (480p of a 1080p master), a re-encode or another frame
rate reads exactly like the original, blind, and the per-cell detector contributions of
all frames add up before one decode.

The mask works on the canonical picture (0.2 megapixels for 16:9), which is what makes
marking 1080p cheaper than marking one 1080p image per frame.

What time-invariance costs: a static pattern can be estimated by averaging many frames
of different content (what moves averages out, the mark does not) and then subtracted;
a blind read does not survive a crop (the grid is tied to the frame's edges); the
informed read (`informed`) registers a crop back first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watermark import grid
from watermark.detect import blind_statistic
from watermark.embed import mark_cells
from watermark.params import Params
from watermark.pattern import Layout, layout
from watermark.payload import CODED_BITS
from watermark.register import resize, warp

CANONICAL_ROWS: Final = 360
"""Height of the canonical picture every frame is read and marked on (its width follows
the aspect ratio, `grid_cols`): 0.23 megapixels for 16:9, small enough that the mask,
host cancellation and the blind statistic cost a few milliseconds a frame."""

CELLS: Final = (4, 8)
"""Cell sides on the canonical picture: 4 (90 x 160 = 14,400 cells for 16:9, 51 per coded
bit and frame) for frames at least `FINE_MIN_HEIGHT` high, 8 (45 x 80) for smaller ones,
whose own pixels are too few for 4-pixel canonical cells (a 180p frame would give each
chip 2 pixels). A 480p copy of a 1080p master has 5.3 of its pixels per fine cell."""

FINE_MIN_HEIGHT: Final = 360

ROW_UNIT: Final = 8
"""The canonical width is a multiple of this (the larger cell), so both grids tile it."""


def params_for(cell: int) -> Params:
    """The image mark's parameters on the canonical picture (PSNR budget 40.2 dB)."""
    return Params(cell=cell)


Plane = NDArray[np.float32]


def embed_cell(width: int, height: int) -> int:
    """The cell side the embedder uses for frames of this size."""
    return CELLS[0] if min(width, height) >= FINE_MIN_HEIGHT else CELLS[1]


def read_cells(width: int, height: int) -> list[int]:
    """Cell sides a blind reader tries, the likeliest for a copy of this size first."""
    first = embed_cell(width, height)
    return [first, *(c for c in CELLS if c != first)]


def grid_cols(width: int, height: int) -> list[int]:
    """Canonical widths, in units of `ROW_UNIT`, a frame of this shape may have, the
    likeliest first.

    ``CANONICAL_ROWS * width / height / ROW_UNIT``, rounded. A downscaled copy's sides
    are rounded to whole (often even) pixels, which moves the ratio a little; where that
    could move the rounding (the exact value within 0.25 of a half), the neighbour is
    tried too.
    """
    exact = CANONICAL_ROWS * width / height / ROW_UNIT
    first = math.floor(exact + 0.5)
    out = [first]
    other = first - 1 if exact < first else first + 1
    if abs(other - exact) < 0.75:
        out.append(other)
    return out


def canonical_shape(cols: int) -> tuple[int, int]:
    """Height and width of the canonical picture `cols` units wide."""
    return CANONICAL_ROWS, cols * ROW_UNIT


def canonical_luma(luma: Plane, cols: int) -> Plane:
    """The frame's luma resized onto the canonical picture (antialiased bilinear)."""
    height, width = canonical_shape(cols)
    return resize(luma, width, height)


def mark_luma(y_plane: NDArray[np.uint8], key: bytes, payload: int, cols: int, cell: int
              ) -> NDArray[np.uint8]:
    """This frame's luma (frame size) with the mark for this key and payload added.

    The canonical picture only steers the mask and host cancellation, where rounding to
    whole grey levels does not matter, so it is made on the 8-bit plane: a box average
    where the frame is a whole multiple of the canonical picture (1080p, 720p), Pillow's
    8-bit bilinear resampling otherwise. The change is added in integers (`add_change`).
    Every step is a pure function of the frame, key and payload: the copy's bytes are
    reproducible.
    """
    height, width = canonical_shape(cols)
    image = Image.fromarray(np.ascontiguousarray(y_plane))
    factor = y_plane.shape[0] // height
    if factor >= 1 and y_plane.shape == (height * factor, width * factor):
        small = image.reduce(factor) if factor > 1 else image
    else:
        small = image.resize((width, height), Image.Resampling.BILINEAR)
    canon = np.asarray(small, dtype=np.float32)
    cells = mark_cells(canon, key, payload, params_for(cell))
    delta = grid.spread(cells, cell, height, width)
    return add_change(y_plane, delta)


DELTA_STEPS: Final = 4
"""`add_change` carries the change in quarter grey levels, within +-31.75."""


def add_change(y_plane: NDArray[np.uint8], delta: Plane) -> NDArray[np.uint8]:
    """`y_plane` plus the canonical change `delta` resized to it (bilinear), rounded
    (halves up) and clipped to [0, 255].

    The change is coded in quarter grey levels around 128 and resized by Pillow's 8-bit
    resampler (about three times faster than its float one at 1080p), then added in
    16-bit integers: ``(4 y + coded - 128 + 2) >> 2``. The copy's pixels are whole grey
    levels anyway, and the mark's peak stays well inside the +-31.75 the coding carries.
    """
    coded = np.clip(np.rint(delta * DELTA_STEPS) + 128.0, 0.0, 255.0).astype(np.uint8)
    big = Image.fromarray(coded).resize((y_plane.shape[1], y_plane.shape[0]),
                                        Image.Resampling.BILINEAR)
    total = y_plane.astype(np.int16)
    total <<= 2
    total += np.asarray(big, dtype=np.int16)
    total -= 128 - DELTA_STEPS // 2
    total >>= 2
    np.clip(total, 0, 255, out=total)
    return total.astype(np.uint8)


@dataclass
class Evidence:
    """Per-bit detector sums over the frames read so far (one per candidate grid).

    `values` adds each frame's matched-filter output per coded bit; `noise` adds the
    squares of the terms, so ``values / sqrt(noise)`` is in units of noise deviations
    whatever the number of frames. Only these 2 x 282 numbers are kept per grid, not
    frames.
    """

    cols: int
    cell: int
    layout: Layout
    values: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))
    noise: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))
    frames: int = 0

    def add(self, canon: Plane, cover: NDArray[np.bool_] | None = None) -> None:
        """Add one canonical frame (weights zero outside `cover`, if given)."""
        stat = blind_statistic(canon, params_for(self.cell))
        weighted = stat.residual * stat.weight
        if cover is not None:
            weighted = np.where(cover, weighted, np.float32(0.0)).astype(np.float32)
        self.values += self.layout.per_bit((weighted * self.layout.chip).astype(np.float64))
        self.noise += self.layout.per_bit(np.square(weighted).astype(np.float64))
        self.frames += 1

    def soft(self) -> NDArray[np.float64]:
        """The soft values of every frame read so far."""
        return np.asarray(self.values / np.sqrt(np.maximum(self.noise, 1e-12)), np.float64)


def evidence_for(key: bytes, cols: int, cell: int) -> Evidence:
    """An empty accumulator for the canonical picture `cols` units wide, at `cell`."""
    height, width = canonical_shape(cols)
    rows, columns = grid.cell_shape(height, width, cell)
    return Evidence(cols, cell, layout(key, rows, columns, CODED_BITS))


def canonical_matrix(matrix: NDArray[np.float64], cols: int,
                     master_shape: tuple[int, int]) -> NDArray[np.float64]:
    """`matrix` (master pixels to the copy's) as a map from the master's canonical
    picture `cols` units wide to the copy's pixels."""
    height, width = canonical_shape(cols)
    to_master = np.diag([master_shape[1] / width, master_shape[0] / height, 1.0])
    square = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.asarray((square @ to_master)[:2], np.float64)


def to_canonical(luma: Plane, combined: NDArray[np.float64], cols: int) -> Plane:
    """A copy's luma resampled into the master's canonical picture through `combined`
    (`canonical_matrix`). A copy finer than the canonical picture is shrunk first, so
    the warp averages its pixels as `canonical_luma` does instead of aliasing."""
    height, width = canonical_shape(cols)
    scale = math.sqrt(abs(float(np.linalg.det(combined[:, :2]))))
    source, pre = luma, np.eye(3)
    if scale > 1.25:
        sw = max(1, round(luma.shape[1] / scale))
        sh = max(1, round(luma.shape[0] / scale))
        source = resize(luma, sw, sh)
        pre = np.diag([sw / luma.shape[1], sh / luma.shape[0], 1.0])
    final = (pre @ np.vstack([combined, [0.0, 0.0, 1.0]]))[:2]
    return warp(source, final, height, width, cubic=True)
