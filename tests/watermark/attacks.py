"""The attacks of the robustness table, as functions of a PIL image and a PRNG.

The benchmark imports these too, so tests and benchmark measure the same thing.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance

Attack = Callable[[Image.Image, np.random.Generator], Image.Image]


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def png(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(buffer.getvalue()))


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


def centre_crop(image: Image.Image, share: float) -> Image.Image:
    width, height = round(image.width * share), round(image.height * share)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def noise(image: Image.Image, rng: np.random.Generator, sigma: float = 5.0) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    noisy = pixels + rng.normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB")


def combo(image: Image.Image) -> Image.Image:
    cropped = centre_crop(image, 0.9)
    return jpeg(half(cropped), 50)


BLIND: dict[str, Attack] = {
    "none (PNG)": lambda im, _: png(im),
    "JPEG 90": lambda im, _: jpeg(im, 90),
    "JPEG 75": lambda im, _: jpeg(im, 75),
    "JPEG 50": lambda im, _: jpeg(im, 50),
    "half and back": lambda im, _: half(im).resize(im.size, Image.Resampling.BICUBIC),
    "noise sigma 5": noise,
    "brightness +20%": lambda im, _: ImageEnhance.Brightness(im).enhance(1.2),
    "contrast x0.8": lambda im, _: ImageEnhance.Contrast(im).enhance(0.8),
}

INFORMED: dict[str, Attack] = {
    "half, kept small": lambda im, _: half(im),
    "crop 90%": lambda im, _: centre_crop(im, 0.9),
    "crop 75%": lambda im, _: centre_crop(im, 0.75),
    "rotate 2 degrees": lambda im, _: im.rotate(2.0, Image.Resampling.BICUBIC),
    "crop 90% + half + JPEG 50": lambda im, _: combo(im),
}

TARGETS: dict[str, float] = {
    "none (PNG)": 1.00,
    "JPEG 90": 1.00,
    "JPEG 75": 0.99,
    "JPEG 50": 0.95,
    "half and back": 0.99,
    "noise sigma 5": 0.99,
    "brightness +20%": 0.99,
    "contrast x0.8": 0.99,
    "half, kept small": 0.95,
    "crop 90%": 0.99,
    "crop 75%": 0.95,
    "rotate 2 degrees": 0.95,
    "crop 90% + half + JPEG 50": 0.90,
}
