"""Real photographs for the watermark's tests and benchmark, from scikit-image's data.

Generated pictures miss what cameras produce (a sky blown out to pure white, a bright suit,
black space, sensor noise, JPEG history), and that is where the mark once broke. These are
real camera content shipped inside the scikit-image wheel (`skimage.data`, its public
API), so nothing is downloaded: a portrait with a white spacesuit, a greyscale
cameraman under a flat sky, a cat, a coffee cup, a rocket against the sky, the Hubble
deep field (black space), the moon (greyscale, black surround), a motorcycle, grass, and
a retina photograph (black surround, 2 megapixels).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def _left_of_pair() -> NDArray[np.uint8]:
    import skimage.data

    left, _right, _disparity = skimage.data.stereo_motorcycle()
    return np.asarray(left, np.uint8)


def _loader(name: str) -> Callable[[], NDArray[np.uint8]]:
    def load() -> NDArray[np.uint8]:
        import skimage.data

        return np.asarray(getattr(skimage.data, name)(), np.uint8)

    return load


#: name -> loader; the unit tests use the ones up to 0.9 megapixels, the benchmark all
PHOTOGRAPHS: dict[str, Callable[[], NDArray[np.uint8]]] = {
    "astronaut": _loader("astronaut"),
    "camera": _loader("camera"),
    "chelsea": _loader("chelsea"),
    "coffee": _loader("coffee"),
    "rocket": _loader("rocket"),
    "hubble_deep_field": _loader("hubble_deep_field"),
    "moon": _loader("moon"),
    "motorcycle": _left_of_pair,
    "grass": _loader("grass"),
    "retina": _loader("retina"),
}

#: the smaller ones, for the unit tests (the 2-megapixel retina is the benchmark's)
SMALL = [name for name in PHOTOGRAPHS if name != "retina"]


@cache
def photograph(name: str) -> Image.Image:
    """One photograph as a PIL image (RGB, or L for the greyscale ones)."""
    pixels = PHOTOGRAPHS[name]()
    return Image.fromarray(pixels, mode="RGB" if pixels.ndim == 3 else "L")


def jpeg_file(name: str) -> bytes:
    """The bytes of one of scikit-image's photographs that ships as a camera JPEG."""
    import skimage.data

    return (Path(skimage.data.data_dir) / name).read_bytes()
