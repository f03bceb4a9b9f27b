"""The picture mark: the image mark's chips on a grid proportional to the frame, the same
in every frame, so evidence adds up over time.

Why a canonical grid. A frame is resized (bilinear, antialiased) to a canonical picture
`ROWS * CELL` pixels high and as wide as the frame's aspect ratio gives (`grid_cols`),
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
informed read (`extract`) registers a crop back first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark import grid
from watermark.detect import blind_statistic
from watermark.embed import mark_cells
from watermark.params import Params
from watermark.pattern import Layout, layout
from watermark.payload import CODED_BITS
from watermark.register import resize, warp

ROWS: Final = 90
"""Cells from top to bottom: 90 x 160 = 14,400 cells for 16:9, 51 per coded bit and
frame. A 480p copy has 5.3 pixels per cell, a 1080p master 12, so a downscale to 480p and
an H.264 re-encode leave the chips mostly intact."""

CELL: Final = 4
"""Canonical pixels per cell side: the smallest cell the image mark uses."""

PARAMS: Final = Params(cell=CELL, host_cancel=True)
"""The image mark's parameters on the canonical picture (PSNR budget 40.2 dB)."""

Plane = NDArray[np.float32]


def grid_cols(width: int, height: int) -> list[int]:
    """Cell columns a frame of this shape may carry, the likeliest first.

    ``ROWS * width / height``, rounded. A downscaled copy's sides are rounded to whole
    (often even) pixels, which moves the ratio a little; where that could move the
    rounding (the exact value within 0.25 of a half), the neighbour is tried too.
    """
    exact = ROWS * width / height
    first = math.floor(exact + 0.5)
    out = [first]
    other = first - 1 if exact < first else first + 1
    if abs(other - exact) < 0.75:
        out.append(other)
    return out


def canonical_shape(cols: int) -> tuple[int, int]:
    """Height and width of the canonical picture for `cols` cell columns."""
    return ROWS * CELL, cols * CELL


def canonical_luma(luma: Plane, cols: int) -> Plane:
    """The frame's luma resized onto the canonical picture (antialiased bilinear)."""
    height, width = canonical_shape(cols)
    return resize(luma, width, height)


def mark_delta(luma: Plane, key: bytes, payload: int, cols: int) -> Plane:
    """The change to add to this frame's luma (frame size), for this key and payload."""
    canon = canonical_luma(luma, cols)
    cells = mark_cells(canon, key, payload, PARAMS)
    height, width = canonical_shape(cols)
    delta = grid.spread(cells, CELL, height, width)
    return resize(delta, luma.shape[1], luma.shape[0])


def add_to_luma(y_plane: NDArray[np.uint8], delta: Plane) -> NDArray[np.uint8]:
    """The uint8 luma plane with `delta` added, rounded and clipped to [0, 255]."""
    marked = y_plane.astype(np.float32)
    marked += delta
    np.rint(marked, out=marked)
    np.clip(marked, 0.0, 255.0, out=marked)
    return marked.astype(np.uint8)


@dataclass
class Evidence:
    """Per-bit detector sums over the frames read so far (one per candidate grid).

    `values` adds each frame's matched-filter output per coded bit; `noise` adds the
    squares of the terms, so ``values / sqrt(noise)`` is in units of noise deviations
    whatever the number of frames. Only these 2 x 282 numbers are kept per grid, not
    frames.
    """

    cols: int
    layout: Layout
    values: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))
    noise: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))
    frames: int = 0

    def add(self, canon: Plane, cover: NDArray[np.bool_] | None = None) -> None:
        """Add one canonical frame (weights zero outside `cover`, if given)."""
        stat = blind_statistic(canon, PARAMS)
        weighted = stat.residual * stat.weight
        if cover is not None:
            weighted = np.where(cover, weighted, np.float32(0.0)).astype(np.float32)
        self.values += self.layout.per_bit((weighted * self.layout.chip).astype(np.float64))
        self.noise += self.layout.per_bit(np.square(weighted).astype(np.float64))
        self.frames += 1

    def soft(self) -> NDArray[np.float64]:
        """The soft values of every frame read so far."""
        return np.asarray(self.values / np.sqrt(np.maximum(self.noise, 1e-12)), np.float64)


def evidence_for(key: bytes, cols: int) -> Evidence:
    """An empty accumulator for a grid of `cols` columns."""
    return Evidence(cols, layout(key, ROWS, cols, CODED_BITS))


def to_canonical(luma: Plane, matrix: NDArray[np.float64], cols: int,
                 master_shape: tuple[int, int]) -> Plane:
    """A copy's luma resampled into the master's canonical picture through `matrix`
    (master pixel coordinates to the copy's, as `watermark.register` gives it)."""
    height, width = canonical_shape(cols)
    to_master = np.diag([master_shape[1] / width, master_shape[0] / height, 1.0])
    square = np.vstack([matrix, [0.0, 0.0, 1.0]])
    combined = (square @ to_master)[:2]
    scale = math.sqrt(abs(float(np.linalg.det(combined[:, :2]))))
    source, pre = luma, np.eye(3)
    if scale > 1.5:
        # shrink the copy first so the warp does not alias (its pixels are finer than cells)
        factor = 1.0 / scale
        sw = max(1, round(luma.shape[1] * factor))
        sh = max(1, round(luma.shape[0] * factor))
        source = resize(luma, sw, sh)
        pre = np.diag([sw / luma.shape[1], sh / luma.shape[0], 1.0])
    final = (pre @ np.vstack([combined, [0.0, 0.0, 1.0]]))[:2]
    return warp(source, final, height, width, cubic=True)
