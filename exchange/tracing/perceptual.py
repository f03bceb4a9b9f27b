"""A 64-bit perceptual hash (DCT, as pHash computes it) to find which work a copy is of.

A leaked copy is no longer byte-identical to anything the platform holds: it carries a
buyer's watermark and has usually been recompressed, resized or cropped. Its coarse
structure survives, and that is what this hash keeps: the signs of the lowest spatial
frequencies of a 32 x 32 greyscale thumbnail against their median. Copies of one picture
land a few bits apart; different pictures about 32. It only orders the candidates: the
keyed watermark read that follows is what decides.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_SIDE = 32
_KEEP = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return np.asarray(matrix, dtype=np.float64)


_DCT = _dct_matrix(_SIDE)


def perceptual_hash(image: Image.Image) -> int:
    """The image's 64-bit DCT hash, as an unsigned integer."""
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:_KEEP, :_KEEP].ravel()
    # The DC term is the mean brightness: left out of the median so that a brighter copy
    # hashes like its original.
    bits = low > np.median(low[1:])
    bits[0] = False
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hash_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()
