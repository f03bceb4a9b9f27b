"""Between PIL images and the luminance plane the mark lives in.

The mark is a change of luminance only: adding the same amount to R, G and B changes Y by
that amount and leaves both chroma channels as they were, so no YCbCr round trip (and none
of its rounding) is needed. Alpha is never touched. Palette images cannot hold a mark (any
re-quantisation to a palette would erase it), so they come back as RGB, or RGBA when the
palette had transparency; greyscale stays greyscale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watermark.errors import (
    EmbedCheckError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

MIN_PIXELS: Final = 256 * 256
MIN_SIDE: Final = 64
MIN_SUSPECT_PIXELS: Final = 96 * 96
DEFAULT_MAX_PIXELS: Final = 50_000_000

_COLOUR_CHANNELS: Final = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}


def _integer_luma(pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
    rgb = pixels[:, :, :3].astype(np.int32)
    thousandths = rgb[:, :, 0] * 299 + rgb[:, :, 1] * 587 + rgb[:, :, 2] * 114
    return (thousandths / 1000.0).astype(np.float32)


@dataclass(frozen=True)
class Planes:
    """An image as uint8 channels, the first `colour` of which carry the mark."""

    pixels: NDArray[np.uint8]
    mode: str
    colour: int

    @property
    def luma(self) -> NDArray[np.float32]:
        """BT.601 luma, computed in integers so it is the same on every CPU."""
        if self.colour == 1:
            return self.pixels[:, :, 0].astype(np.float32)
        return _integer_luma(self.pixels)

    def with_luma_added(self, delta: NDArray[np.float32]) -> Planes:
        """The planes with `delta` added to every colour channel, rounded and clipped.

        A non-finite delta is refused here, at the cast: NaN cast to uint8 is whatever the
        CPU makes of it, and a copy built from it is noise, not a marked picture.
        """
        if not bool(np.isfinite(delta).all()):
            raise EmbedCheckError("the mark came out as non-finite numbers; nothing was marked")
        out = self.pixels.copy()
        colour = self.pixels[:, :, : self.colour].astype(np.float32) + delta[:, :, None]
        out[:, :, : self.colour] = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
        return Planes(out, self.mode, self.colour)

    def image(self) -> Image.Image:
        """The planes as a PIL image in their mode."""
        if self.pixels.shape[2] == 1:
            return Image.fromarray(self.pixels[:, :, 0], mode=self.mode)
        return Image.fromarray(self.pixels, mode=self.mode)


def check_size(width: int, height: int, max_pixels: int, min_pixels: int = MIN_PIXELS) -> None:
    """Refuse images too small to carry the payload or too large to handle safely."""
    if width < MIN_SIDE or height < MIN_SIDE or width * height < min_pixels:
        raise ImageTooSmallError(
            f"{width}x{height} is too small: need at least {min_pixels} pixels "
            f"and {MIN_SIDE} on each side"
        )
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{width}x{height} is more than the limit of {max_pixels} pixels")


def _markable(image: Image.Image) -> Image.Image:
    if image.mode in {"L", "RGB"} and "transparency" in image.info:
        # A colour-keyed transparent colour would no longer match once marked: make the
        # transparency an alpha channel, which marking never touches.
        return image.convert(image.mode + "A")
    if image.mode in _COLOUR_CHANNELS:
        return image
    if image.mode in {"P", "PA"}:
        has_alpha = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    raise UnsupportedImageError(f"image mode {image.mode!r} cannot be marked")


def to_planes(image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> Planes:
    """The image's channels as an array, after checking its size and mode."""
    if not isinstance(image, Image.Image):
        raise UnsupportedImageError(f"expected a PIL image, not {type(image).__name__}")
    check_size(image.width, image.height, max_pixels)
    if getattr(image, "n_frames", 1) > 1:
        raise UnsupportedImageError("animated images cannot be marked")
    markable = _markable(image)
    pixels = np.asarray(markable, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return Planes(pixels, markable.mode, _COLOUR_CHANNELS[markable.mode])


def luma_of(
    image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = MIN_PIXELS
) -> NDArray[np.float32]:
    """Luminance of any image a suspect copy may arrive as (also 16-bit and CMYK).

    An informed read accepts copies smaller than a markable image (`min_pixels`): a
    downscaled copy is put back to the master's size before reading.
    """
    if not isinstance(image, Image.Image):
        raise UnsupportedImageError(f"expected a PIL image, not {type(image).__name__}")
    check_size(image.width, image.height, max_pixels, min_pixels)
    if image.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        plane = np.asarray(image.convert("F"), dtype=np.float32)
        if not bool(np.isfinite(plane).all()):
            raise UnsupportedImageError("the image has pixels that are not finite numbers")
        top = float(plane.max()) if plane.size else 0.0
        return plane * np.float32(255.0 / 65535.0) if top > 255.0 else plane
    if image.mode in {"L", "LA"}:
        return np.asarray(image.getchannel(0), dtype=np.float32)
    if image.mode == "1":
        raise UnsupportedImageError("bilevel images carry no mark")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return _integer_luma(np.asarray(rgb, dtype=np.uint8))
