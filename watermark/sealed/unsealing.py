"""What the buyer's agent does with a sealed work: add its table, write the file.

Decrypting and marking are one step: the personal table's entries cancel the noise and add
the licence's mark in the same sum, so no unmarked coefficient ever exists on the device.
Integer arithmetic throughout, then the master's encoding: the platform's audit, running
the same function with the table it issued, gets the same bytes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from watermark.codec import encode
from watermark.sealed import cells
from watermark.sealed.container import read_container
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.lookups import lookups
from watermark.sealed.table import read_table


def unseal_image(container: bytes, table: bytes) -> bytes:
    """The marked file a sealed container and a personal table give (`SealedFormatError`
    if either is malformed, or they are not for each other)."""
    parts = read_container(container)
    info = parts.info
    entries = read_table(table, info.table_size)
    picked = entries[lookups(info.lookup_seed, info.rows * info.cols, info.table_size)]
    coefficients = parts.sealed.astype(np.int64) + parts.scale.astype(np.int64) * \
        picked.sum(axis=1, dtype=np.int64).reshape(info.rows, info.cols)
    colour = info.colour
    pixels = np.empty((info.height, info.width, info.channels), dtype=np.uint8)
    for top, count, rows in cells.strips(info.rows, info.cell, info.height):
        luma = cells.spread(coefficients[top : top + count], info.cell,
                            rows.stop - rows.start, info.width)
        pixels[rows, :, :colour] = np.clip(
            parts.complement[rows].astype(np.int32) + luma[:, :, None], 0, 255)
    pixels[:, :, colour:] = parts.extra
    if pixels.shape[2] == 1:
        image = Image.fromarray(pixels[:, :, 0], mode=info.mode)
    else:
        image = Image.fromarray(pixels, mode=info.mode)
    try:
        return encode(image, info.encoding)
    except (OSError, ValueError) as error:  # metadata the encoder refuses
        raise SealedFormatError(f"sealed container: the copy cannot be written: {error}"
                                ) from error
