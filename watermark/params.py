"""The mark's tunable constants, in one frozen value passed to embed and extract alike.

Changing any of them changes what a mark looks like, so a copy must be read with the
parameters it was marked with. `DEFAULT` is what the agent and the tracer use; the values
were chosen by the benchmark in benchmarks/watermark (see docs/WATERMARK.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

MIN_CELL = 4
MAX_CELL = 8


@dataclass(frozen=True)
class Params:
    """How strong the mark is, where it goes, and how it is read."""

    cell: int = 0
    """Side of one chip in pixels (0: chosen per image by `mask.choose_cell`). Larger cells
    survive downscaling and JPEG better, but fewer fit and the picture interferes more."""

    cells_per_image: int = 24_000
    """With automatic cells, about this many cells per image (cell side 4 to 8 pixels)."""

    psnr: float = 40.2
    """Target PSNR of the marked image against the original (dB); sets the mark's energy."""

    texture_floor: float = 2.0
    """Local standard deviation below which a region counts as flat and gets the least mark."""

    texture_cap: float = 8.0
    """Local standard deviation above which more texture earns no stronger mark."""

    texture_power: float = 1.0
    """Mask = (texture / floor) ** power: 1 follows texture fully, lower spreads the mark wider."""

    flat_amplitude: float = 1.0
    """Largest peak change (grey levels) allowed in a flat region, whatever the PSNR budget."""

    read_noise: float = 1.0
    """Grey levels of noise the reader assumes everywhere, so flat cells are not over-trusted."""

    host_cancel: bool = True
    """Spend part of the budget cancelling the picture's own correlation with each bit."""

    min_share: float = 0.5
    """With host cancellation, each bit still gets at least this share of the plain amplitude."""

    max_share: float = 2.5
    """...and at most this multiple of it, so no bit's cells become visible."""

    psnr_floor: float = 40.0
    """The least PSNR (dB) at which `embed` hands over a copy; below it, it raises.

    A guard on the output, not part of the mark: reading does not depend on it. The budget
    `psnr` sits a little above it to leave room for rounding to whole grey levels."""

    def size_cell(self, height: int, width: int) -> int:
        """The cell side for an image of this size, before looking at its content.

        Small images need small cells to give each of the 282 coded bits enough chips; big
        ones can afford bigger cells, which is what carries the mark through a downscale
        followed by strong JPEG.
        """
        if self.cell:
            return self.cell
        side = round(math.sqrt(height * width / self.cells_per_image))
        return min(MAX_CELL, max(MIN_CELL, side))

    def with_cell(self, cell: int) -> Params:
        return replace(self, cell=cell)


DEFAULT = Params()
