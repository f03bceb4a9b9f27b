"""Embed's check of its own output, made before any buyer sees the copy.

A marking defect is silent: the buyer paid, the receipt says "marked", and what reaches
them is a wrecked picture that carries no readable mark. So `embed` judges the pixels it
is about to return the way anyone else would: the PSNR of their colour channels against
the input must reach `Params.psnr_floor`, and the blind reader (the one a tracer uses
without the master) must give back the exact payload. If either fails, `embed` raises
`EmbedCheckError`, and the agent delivers the plain copy recorded as unmarked
("embed-failed") rather than a damaged one.

The check is on the marked pixels. `embed_bytes` then encodes them in the master's
format; for JPEG and lossy WebP that re-encoding adds its own loss, as any re-save of a
lossy file does (docs/WATERMARK.md gives the figures).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.errors import EmbedCheckError
from watermark.extract import blind_soft
from watermark.params import Params
from watermark.payload import decode
from watermark.planes import Planes

_ROWS_PER_STEP: Final = 512  # rows compared at once: bounded memory on 50-megapixel images


def psnr(original: NDArray[np.uint8], marked: NDArray[np.uint8]) -> float:
    """PSNR in dB of `marked` against `original` (same shape, uint8), inf if identical.

    Summed in integers, so the figure does not depend on float rounding.
    """
    squares = 0
    for top in range(0, original.shape[0], _ROWS_PER_STEP):
        rows = slice(top, top + _ROWS_PER_STEP)
        diff = marked[rows].astype(np.int32) - original[rows].astype(np.int32)
        squares += int(np.square(diff).sum(dtype=np.int64))
    if squares == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 * original.size / squares)


def _saturated_share(planes: Planes) -> float:
    colour = planes.pixels[:, :, : planes.colour]
    return float(np.mean((colour == 0) | (colour == 255)))


def check_marked(original: Planes, marked: Planes, key: bytes, payload: int,
                 params: Params) -> None:
    """Raise `EmbedCheckError` unless `marked` is close to `original` and reads back.

    `params.cell` must be the cell side the embedder used: the blind reader tries it among
    its candidates, and reading it directly spares a second texture pass.
    """
    colours = original.colour
    value = psnr(original.pixels[:, :, :colours], marked.pixels[:, :, :colours])
    if value < params.psnr_floor:
        raise EmbedCheckError(
            f"the marked copy would be damaged: PSNR {value:.1f} dB against the original, "
            f"below the floor of {params.psnr_floor:.1f} dB"
        )
    decoded = decode(key, blind_soft(marked.luma, key, params))
    if decoded.payload != payload:
        raise EmbedCheckError(
            "the mark does not read back from the marked copy "
            f"({_saturated_share(original):.0%} of the picture is pure black or white, "
            "where a mark has room in one direction only)"
        )
