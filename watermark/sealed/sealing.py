"""Making a work's sealed container, once, on the platform.

The container is the master with each cell's bump coefficient hidden under
scale x (sum of R noise-table entries): useless without a personal table, and the same
bytes for every buyer, so its pieces are swapped and seeded like any other work's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from watermark.codec import encoding_of, open_image
from watermark.errors import EmbedCheckError, UnsupportedImageError
from watermark.mask import amplitude, choose_cell
from watermark.params import DEFAULT
from watermark.payload import validate_key
from watermark.planes import to_planes
from watermark.sealed import cells, keyed
from watermark.sealed.container import Container, SealedInfo, write_container
from watermark.sealed.lookups import lookups
from watermark.sealed.params import (
    CODE_BITS,
    LOOKUPS,
    MAX_SCALE,
    MAX_TABLE_ENTRIES,
    MIN_SCALE,
    MIN_TABLE_ENTRIES,
    PSNR,
    USES_PER_ENTRY,
)

PARAMS = replace(DEFAULT, psnr=PSNR)
"""The image mark's masking parameters, at sealed delivery's budget."""


def table_size_for(cell_count: int) -> int:
    """The least power of two with at least cells x R / USES_PER_ENTRY entries."""
    wanted = max(MIN_TABLE_ENTRIES, -(-cell_count * LOOKUPS // USES_PER_ENTRY))
    size = 1 << (wanted - 1).bit_length()
    if size > MAX_TABLE_ENTRIES:
        raise UnsupportedImageError("the image has too many cells to seal")
    return size


def scales(luma: NDArray[np.float32], cell: int) -> NDArray[np.uint8]:
    """Each cell's mark scale: 8 x the image mark's amplitude there (the mark on a cell
    has a standard deviation of scale / 8 grey levels)."""
    peak = amplitude(luma, PARAMS.with_cell(cell)).astype(np.float64)
    return np.clip(np.rint(8.0 * peak), MIN_SCALE, MAX_SCALE).astype(np.uint8)


def seal_image(master: bytes, key: bytes) -> bytes:
    """The sealed container of a PNG, JPEG or WebP master under the work's `key`.

    Raises `InvalidKeyError`, or an `UnsupportedImageError` subclass for an image the
    image mark would refuse too (too small, too large, animated, damaged).
    """
    raw_key = validate_key(key)
    source = open_image(master)
    if getattr(source, "n_frames", 1) > 1:
        raise UnsupportedImageError("animated images cannot be sealed")
    if source.format == "JPEG" and source.mode not in {"L", "RGB"}:
        raise UnsupportedImageError(f"JPEG in mode {source.mode!r} cannot be sealed")
    planes = to_planes(source)
    luma = planes.luma
    cell = choose_cell(luma, PARAMS)
    height, width = luma.shape
    rows, cols = height // cell, width // cell
    size = table_size_for(rows * cols)
    seed = keyed.lookup_seed(raw_key)
    alpha = cells.project(luma, cell)
    scale = scales(luma, cell)
    noise = keyed.noise_table(raw_key, size)[lookups(seed, rows * cols, size)].sum(axis=1)
    sealed = alpha + scale.astype(np.int64) * noise.reshape(rows, cols)
    colour = planes.colour
    complement = np.empty((height, width, colour), dtype=np.int16)
    for top, count, strip in cells.strips(rows, cell, height):
        body = cells.spread(alpha[top : top + count], cell, strip.stop - strip.start, width)
        complement[strip] = planes.pixels[strip, :, :colour].astype(np.int32) - body[:, :, None]
    info = SealedInfo(width, height, planes.mode, cell, size, CODE_BITS, seed,
                      encoding_of(source, bytes(master)))
    if not (np.iinfo(np.int32).min < sealed.min() and sealed.max() < np.iinfo(np.int32).max):
        raise EmbedCheckError("a sealed coefficient does not fit 32 bits")
    return write_container(Container(info, complement,
                                     np.ascontiguousarray(planes.pixels[:, :, colour:]),
                                     sealed.astype(np.int32), scale))
