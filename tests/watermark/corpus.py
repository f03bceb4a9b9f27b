"""Synthetic, natural-looking test images, made from a seed (no media is downloaded).

Each generator mixes what real pictures have and what stresses a watermark: smooth
gradients (where a mark shows), flat regions (where it has no room), sharp edges, fine
texture and sensor-like grain. The benchmark uses the same generators at larger sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

Generator = Callable[[np.random.Generator, int, int], Image.Image]


def _fractal(rng: np.random.Generator, w: int, h: int, beta: float) -> NDArray[np.float64]:
    """Zero-mean, unit-variance noise with a 1/f**beta spectrum (clouds, terrain)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    spectrum = rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)
    spectrum /= radius**beta
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(h, w))
    return np.asarray((field - field.mean()) / (field.std() + 1e-12), np.float64)


def _to_image(rgb: NDArray[np.float64]) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), mode="RGB")


def _grid(w: int, h: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y, x = np.mgrid[0:h, 0:w]
    return x / max(w - 1, 1), y / max(h - 1, 1)


def landscape(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Sky gradient, a hill line, textured ground with grain."""
    _x, y = _grid(w, h)
    sky = np.stack([90 + 80 * y, 140 + 70 * y, 230 - 20 * y], axis=-1)
    ridge = 0.45 + 0.08 * _fractal(rng, w, 1, 1.8)[0][None, :] * 1.5
    ground_tex = _fractal(rng, w, h, 1.2)
    ground = np.stack(
        [70 + 25 * ground_tex + 30 * y, 110 + 30 * ground_tex, 50 + 15 * ground_tex], axis=-1
    )
    is_ground = (y > ridge)[..., None]
    rgb = np.where(is_ground, ground, sky) + rng.normal(0, 2.0, (h, w, 1))
    return _to_image(rgb)


def clouds(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Soft coloured 1/f noise: smooth everywhere, texture at every scale."""
    channels = [_fractal(rng, w, h, 1.6) for _ in range(3)]
    base = np.array([120.0, 130.0, 150.0])
    rgb = np.stack([base[i] + 45 * channels[i] for i in range(3)], axis=-1)
    return _to_image(rgb)


def cartoon(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Flat-coloured shapes on a gradient: large flat areas and hard edges."""
    x, y = _grid(w, h)
    background = np.stack([200 - 60 * x, 180 + 40 * y, 160 + 30 * x * y], axis=-1)
    image = _to_image(background)
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.03, 0.2) * w, rng.uniform(0.03, 0.2) * h
        colour = tuple(int(c) for c in rng.integers(20, 236, 3))
        if rng.random() < 0.5:
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        else:
            draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(0.7))


def portrait(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth shaded blobs (skin-like) on a dark vignette, with fine grain."""
    x, y = _grid(w, h)
    rgb = np.zeros((h, w, 3))
    rgb += np.stack([40 + 30 * x, 35 + 20 * y, 45 + 10 * x], axis=-1)
    for _ in range(6):
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
        s = rng.uniform(0.08, 0.25)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        tone = np.array([rng.uniform(150, 230), rng.uniform(110, 170), rng.uniform(90, 140)])
        rgb += blob[..., None] * (tone - 40) * 0.8
    rgb += 6 * _fractal(rng, w, h, 2.2)[..., None] + rng.normal(0, 1.5, (h, w, 1))
    return _to_image(rgb)


def foliage(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Busy high-frequency texture (leaves, grass) with darker gaps."""
    fine = _fractal(rng, w, h, 0.7)
    coarse = _fractal(rng, w, h, 2.0)
    leaves = np.stack([50 + 30 * fine + 20 * coarse, 100 + 45 * fine + 30 * coarse,
                       40 + 20 * fine], axis=-1)
    return _to_image(leaves)


def city(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Buildings with window grids, a sky gradient and street noise: edges and repeats."""
    _x, y = _grid(w, h)
    rgb = np.stack([170 + 50 * y, 180 + 40 * y, 200 + 30 * y], axis=-1)
    image = _to_image(rgb)
    draw = ImageDraw.Draw(image)
    left = 0.0
    while left < w:
        width = rng.uniform(0.06, 0.16) * w
        top = rng.uniform(0.15, 0.6) * h
        shade = int(rng.integers(60, 160))
        draw.rectangle((left, top, left + width, h), fill=(shade, shade - 10, shade - 20))
        step = max(6, int(width / 6))
        for wx in np.arange(left + step / 2, left + width - step / 2, step):
            for wy in np.arange(top + step / 2, h - step, step * 1.4):
                lit = 200 if rng.random() < 0.4 else shade // 2
                draw.rectangle((wx, wy, wx + step / 2, wy + step / 2), fill=(lit, lit, lit - 30))
        left += width + rng.uniform(0, 0.03) * w
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 3.0, (h, w, 1))
    return _to_image(pixels)


GENERATORS: dict[str, Generator] = {
    "landscape": landscape,
    "clouds": clouds,
    "cartoon": cartoon,
    "portrait": portrait,
    "foliage": foliage,
    "city": city,
}


def make(name: str, width: int, height: int, seed: int) -> Image.Image:
    """One corpus image, the same for the same arguments on every machine."""
    return GENERATORS[name](np.random.default_rng(seed), width, height)
