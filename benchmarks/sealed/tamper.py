"""What buyers do to their sealed copies in the security experiments: one buyer estimating
its mark and subtracting it, and coalitions mixing their copies.

Every function takes and returns pixel arrays (uint8, height x width x channels, or
height x width for a greyscale image). Changes made "to the luma" are added alike to R, G
and B, as the mark itself is, so the attacker spends no quality on colour it does not need
to touch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from skimage.restoration import denoise_bilateral

from watermark.sealed import cells
from watermark.sealed.container import read_container
from watermark.sealed.lookups import lookups

Pixels = NDArray[np.uint8]


@dataclass(frozen=True)
class Public:
    """What a buyer knows of its work beyond its copy: the container's header and scales
    (the container is the same for every buyer, and the agent must read all of it)."""

    cell: int
    scale: NDArray[np.uint8]
    lookup_seed: bytes
    table_size: int


def luma(pixels: Pixels) -> NDArray[np.float64]:
    if pixels.ndim == 2:
        return pixels.astype(np.float64)
    rgb = pixels[:, :, :3].astype(np.float64)
    return 0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]


def add_to_luma(pixels: Pixels, change: NDArray[np.float64]) -> Pixels:
    """`change` (grey levels) added to every colour channel alike, rounded and clipped."""
    out = pixels.astype(np.float64)
    if out.ndim == 2:
        out += change
    else:
        out[:, :, :3] += change[:, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _smoothed(smooth: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> Callable[
        [Pixels], Pixels]:
    """Estimate the mark as luma minus its smoothed version and subtract it (strength 1)."""

    def attack(pixels: Pixels) -> Pixels:
        y = luma(pixels)
        return add_to_luma(pixels, smooth(y) - y)

    return attack


def gaussian(sigma: float) -> Callable[[Pixels], Pixels]:
    return _smoothed(lambda y: ndimage.gaussian_filter(y, sigma, mode="reflect"))


def median(size: int) -> Callable[[Pixels], Pixels]:
    return _smoothed(lambda y: ndimage.median_filter(y, size=size, mode="reflect"))


def bilateral(spatial: float, colour: float) -> Callable[[Pixels], Pixels]:
    return _smoothed(lambda y: 255.0 * denoise_bilateral(
        y / 255.0, sigma_color=colour, sigma_spatial=spatial, mode="reflect"))


_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=bool)


def _cell_estimate(pixels: Pixels, public: Public, how: str) -> NDArray[np.float64]:
    """Each cell's mark as the buyer estimates it, in 1/16 grey level: its bump
    coefficient minus the median or mean of its 8 neighbours' coefficients."""
    alpha = cells.project(luma(pixels).astype(np.float32), public.cell).astype(np.float64)
    if how == "median":
        around = ndimage.median_filter(alpha, footprint=_RING, mode="reflect")
    else:
        around = ndimage.convolve(alpha, _RING.astype(np.float64) / 8.0, mode="reflect")
    return np.asarray(alpha - around, np.float64)


def _subtract_cells(pixels: Pixels, public: Public, estimate: NDArray[np.float64],
                    strength: float) -> Pixels:
    height, width = pixels.shape[:2]
    change = cells.spread(np.rint(-strength * estimate).astype(np.int64), public.cell,
                          height, width)
    return add_to_luma(pixels, change.astype(np.float64))


def cell_reestimate(how: str, strength: float, public: Public) -> Callable[[Pixels], Pixels]:
    """Replace each cell's coefficient by its neighbours' median or mean (strength 1), or
    subtract that estimate of the mark `strength` times."""
    return lambda pixels: _subtract_cells(pixels, public, _cell_estimate(pixels, public, how),
                                          strength)


def table_aware(strength: float, public: Public) -> Callable[[Pixels], Pixels]:
    """The buyer also uses the public lookups: every table entry's +-1 is voted on by the
    cells that add it up (each cell's estimate over its scale), the sign kept, and each
    cell's mark predicted again as scale x (sum of its entries' signs) and subtracted."""

    def attack(pixels: Pixels) -> Pixels:
        estimate = _cell_estimate(pixels, public, "median")
        rows, cols = estimate.shape
        scale = public.scale.astype(np.float64)
        picked = lookups(public.lookup_seed, rows * cols, public.table_size)
        votes = np.bincount(picked.ravel(), weights=np.repeat(
            (estimate / scale).ravel(), picked.shape[1]), minlength=public.table_size)
        signs = np.sign(votes)
        predicted = scale * signs[picked].sum(axis=1).reshape(rows, cols)
        return _subtract_cells(pixels, public, predicted, strength)

    return attack


def noise(sigma: float, rng: np.random.Generator) -> Callable[[Pixels], Pixels]:
    return lambda pixels: np.clip(np.rint(
        pixels.astype(np.float64) + rng.normal(0.0, sigma, pixels.shape)), 0, 255).astype(
            np.uint8)


def jpeg(quality: int) -> Callable[[Pixels], Pixels]:
    def attack(pixels: Pixels) -> Pixels:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())), np.uint8)

    return attack


def removal_attacks(public: Public, rng: np.random.Generator,
                    quick: bool) -> list[tuple[str, str, Callable[[Pixels], Pixels]]]:
    """(family, level, attack), each family from weak to strong."""
    strengths = [0.5, 1.0, 2.0, 4.0] if quick else [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    out: list[tuple[str, str, Callable[[Pixels], Pixels]]] = []
    for sigma in [0.5, 1.0, 2.0] if quick else [0.5, 0.7, 1.0, 1.5, 2.0, 3.0]:
        out.append(("Gaussian blur of the luma", f"sigma {sigma:g} px", gaussian(sigma)))
    for size in [3, 5] if quick else [3, 5, 7, 9]:
        out.append(("median filter of the luma", f"{size}x{size}", median(size)))
    for spatial, colour in [(2, 0.1)] if quick else [(1, 0.05), (2, 0.1), (3, 0.1), (3, 0.3)]:
        out.append(("bilateral filter of the luma", f"spatial {spatial}, range {colour:g}",
                    bilateral(spatial, colour)))
    for how in ("median", "mean"):
        for strength in strengths:
            out.append((f"cell re-estimation, neighbours' {how}", f"x{strength:g}",
                        cell_reestimate(how, strength, public)))
    for strength in strengths:
        out.append(("cell re-estimation voted over the public lookups", f"x{strength:g}",
                    table_aware(strength, public)))
    for sigma in [4, 16] if quick else [2, 4, 8, 12, 16, 24, 32]:
        out.append(("Gaussian noise", f"sigma {sigma}", noise(sigma, rng)))
    for quality in [50, 10] if quick else [90, 75, 50, 30, 20, 10, 5]:
        out.append(("JPEG", f"quality {quality}", jpeg(quality)))
    return out


def average(copies: list[Pixels]) -> Pixels:
    stack = np.stack([c.astype(np.float64) for c in copies])
    return np.clip(np.rint(stack.mean(axis=0)), 0, 255).astype(np.uint8)


def mix_blocks(copies: list[Pixels], block: int, rng: np.random.Generator) -> Pixels:
    """Each block x block square (1 for per pixel) from one colluder chosen at random."""
    height, width = copies[0].shape[:2]
    rows, cols = -(-height // block), -(-width // block)
    choice = rng.integers(0, len(copies), size=(rows, cols))
    owner = np.kron(choice, np.ones((block, block), dtype=np.int64))[:height, :width]
    out = copies[0].copy()
    for index, copy in enumerate(copies[1:], start=1):
        out[owner == index] = copy[owner == index]
    return out


def from_container(container: bytes) -> Pixels:
    """A picture from the container alone, without any table: each cell's bump
    coefficient chosen so that the picture is as smooth as it can be from pixel to pixel
    (least squares on the gradients of complement + coefficient x bump, one sparse
    solve). The complement carries every pixel's detail in the clear, and across a cell's
    border it tells the difference between two neighbouring cells' coefficients."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    parts = read_container(container)
    info = parts.info
    cell, rows, cols, height, width = info.cell, info.rows, info.cols, info.height, info.width
    complement = parts.complement.astype(np.float64)
    window = cells.bump(cell).astype(np.float64) / float(cells.BUMP_UNIT**2)
    y, x = np.mgrid[0 : rows * cell, 0 : cols * cell]
    spread = sparse.csr_matrix(
        (window[y % cell, x % cell].ravel(),
         ((y * width + x).ravel(), ((y // cell) * cols + x // cell).ravel())),
        shape=(height * width, rows * cols))

    def difference(axis: int) -> sparse.csr_matrix:
        index = np.arange(height * width).reshape(height, width)
        ahead = index[1:, :] if axis == 0 else index[:, 1:]
        behind = index[:-1, :] if axis == 0 else index[:, :-1]
        count = ahead.size
        return sparse.csr_matrix(
            (np.r_[np.ones(count), -np.ones(count)],
             (np.r_[np.arange(count), np.arange(count)], np.r_[ahead.ravel(), behind.ravel()])),
            shape=(count, height * width))

    gradient = sparse.vstack([difference(0), difference(1)]).tocsr()
    moved = (gradient @ spread).tocsr()
    normal = (moved.T @ moved).tocsc() + 1e-6 * sparse.identity(rows * cols, format="csc")
    coefficients = spsolve(normal, -(moved.T @ (gradient @ complement.mean(axis=2).ravel())))
    picture = complement + (spread @ coefficients).reshape(height, width)[:, :, None]
    out = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
    if parts.extra.shape[2]:
        out = np.concatenate([out, parts.extra], axis=2)
    return out[:, :, 0] if out.shape[2] == 1 else out
