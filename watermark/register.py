"""Registering a suspect copy to the master: undo scale, rotation and crop before reading.

The mark's grid is fixed to the master's pixels, so a copy that was cropped, resized or
slightly rotated must be put back into the master's frame first. Two stages:

1. Coarse, on copies about 512 pixels wide: Fourier-Mellin. The magnitude of a Fourier
   transform ignores translation (hence crop position); in log-polar coordinates a rotation
   and a scale of the image become a plain shift, which phase correlation finds. The few best
   (scale, rotation) candidates, each also turned by 180 degrees (a magnitude spectrum cannot
   tell), get their translation by phase correlation and are ranked by how well the aligned
   copy correlates with the master.
   Smooth pictures give Fourier-Mellin little to hold on to; when no candidate matches well,
   plain rescales over a log grid are tried as well.
2. Fine: Lucas-Kanade (Gauss-Newton on every pixel's brightness) fits a full affine map plus
   a gain and an offset, robustly reweighted so a rotation's filled corners do not pull it,
   on a pyramid from the working size up to 1024 pixels wide. The mark's cells are 4 to 8
   pixels wide, so the map must land within a fraction of a pixel everywhere; on the test
   corpus it lands within about 0.2 pixel (crops, halving, 2-degree rotations).

Coordinates are continuous pixel coordinates (pixel i covers [i, i + 1]), as PIL's affine
transform uses, so a map found at one resolution scales exactly to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Plane = NDArray[np.float32]
Matrix = NDArray[np.float64]
"""2x3 affine map from master coordinates to suspect coordinates."""

WORK_SIDE: Final = 512  # coarse stage image size
FINE_SIDE: Final = 1024  # finest Lucas-Kanade level: 1/1024 of the width is fine enough
_ANGLES: Final = 360  # log-polar samples over 180 degrees
_RADII: Final = 256  # log-polar samples over the radius
_CANDIDATES: Final = 5  # Fourier-Mellin peaks tried
_GOOD_MATCH: Final = 0.85  # below this, also try plain rescales
_MAX_SAMPLES: Final = 250_000  # pixels per Lucas-Kanade step


@dataclass(frozen=True)
class Alignment:
    """Where the master's pixels are in the suspect copy, and how sure we are."""

    matrix: tuple[float, float, float, float, float, float]
    """(a, b, c, d, e, f): suspect (u, v) = (a x + b y + c, d x + e y + f) for master (x, y)."""

    correlation: float
    """Normalised correlation of the aligned copy with the master over their overlap."""

    overlap: float
    """Share of the master's area that the suspect copy covers."""

    @property
    def scale(self) -> float:
        a, b, _, d, e, _ = self.matrix
        return float(np.sqrt(abs(a * e - b * d)))

    @property
    def rotation_degrees(self) -> float:
        a, _, _, d, _, _ = self.matrix
        return float(np.degrees(np.arctan2(d, a)))


def _to_image(plane: Plane) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")


def resize(plane: Plane, width: int, height: int) -> Plane:
    """Antialiased resize of a float plane (PIL's convolution resampling)."""
    image = _to_image(plane).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def warp(plane: Plane, matrix: Matrix, height: int, width: int, *, cubic: bool = False) -> Plane:
    """The plane resampled onto a height x width master frame through `matrix`."""
    resample = Image.Resampling.BICUBIC if cubic else Image.Resampling.BILINEAR
    data = tuple(float(v) for v in matrix.ravel())
    out = _to_image(plane).transform((width, height), Image.Transform.AFFINE, data, resample)
    return np.asarray(out, dtype=np.float32)


def _bilinear(image: NDArray[np.float64], ys: NDArray[np.float64], xs: NDArray[np.float64]
              ) -> NDArray[np.float64]:
    """Bilinear samples of `image` at fractional (ys, xs), array indices, clamped."""
    h, w = image.shape
    ys = np.clip(ys, 0, h - 1.001)
    xs = np.clip(xs, 0, w - 1.001)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    fy, fx = ys - y0, xs - x0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, np.float64)


def _window(h: int, w: int) -> NDArray[np.float64]:
    return np.outer(np.hanning(h), np.hanning(w))


def _spectrum(plane: Plane, n: int) -> NDArray[np.float64]:
    """Log magnitude spectrum, zero frequency centred, low frequencies damped."""
    centred = (plane - plane.mean()) * _window(*plane.shape)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(centred, s=(n, n))))
    f = np.fft.fftshift(np.fft.fftfreq(n))
    cosines = np.cos(np.pi * f)
    x = np.outer(cosines, cosines)
    return np.asarray(np.log1p(magnitude) * (1.0 - x) * (2.0 - x), np.float64)


def _log_polar(spectrum: NDArray[np.float64], r_min: float, r_max: float) -> NDArray[np.float64]:
    n = spectrum.shape[0]
    theta = np.arange(_ANGLES) * np.pi / _ANGLES
    rho = np.exp(np.linspace(np.log(r_min), np.log(r_max), _RADII))
    ys = n / 2 + rho[None, :] * np.sin(theta)[:, None]
    xs = n / 2 + rho[None, :] * np.cos(theta)[:, None]
    return _bilinear(spectrum, ys, xs)


def _correlation_surface(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Phase correlation over the last two axes: peak at the shift taking b onto a."""
    cross = np.fft.fft2(a) * np.conj(np.fft.fft2(b))
    cross /= np.abs(cross) + 1e-9
    return np.asarray(np.fft.ifft2(cross).real, np.float64)


def _subpixel(surface: NDArray[np.float64], index: tuple[int, int]) -> tuple[float, float]:
    """Parabolic refinement of a peak, wrapping at the borders."""
    h, w = surface.shape
    i, j = index
    centre = surface[i, j]
    offsets = []
    for before, after in (
        (surface[(i - 1) % h, j], surface[(i + 1) % h, j]),
        (surface[i, (j - 1) % w], surface[i, (j + 1) % w]),
    ):
        denominator = before - 2 * centre + after
        offsets.append(0.5 * (before - after) / denominator if denominator < 0 else 0.0)
    return i + offsets[0], j + offsets[1]


def _wrapped(value: float, size: int) -> float:
    return value - size if value > size / 2 else value


def _peaks(surface: NDArray[np.float64], count: int) -> list[tuple[float, float, float]]:
    """The strongest `count` peaks (row, col, height), suppressing each one's neighbourhood."""
    work = surface.copy()
    found = []
    for _ in range(count):
        i, j = np.unravel_index(int(np.argmax(work)), work.shape)
        y, x = _subpixel(surface, (int(i), int(j)))
        found.append((y, x, float(surface[i, j])))
        rows = np.arange(i - 4, i + 5) % work.shape[0]
        cols = np.arange(j - 4, j + 5) % work.shape[1]
        work[np.ix_(rows, cols)] = -np.inf
    return found


def _similarity(scale: float, angle: float, master_centre: NDArray[np.float64],
                suspect_centre: NDArray[np.float64]) -> Matrix:
    """Master -> suspect map scaling by `scale`, turning by `angle`, centre onto centre."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.array([[c, -s], [s, c]])
    offset = suspect_centre - linear @ master_centre
    return np.hstack([linear, offset[:, None]])


def _ncc(a: Plane, b: Plane, valid: NDArray[np.bool_]) -> float:
    if valid.sum() < 64:
        return 0.0
    x = a[valid].astype(np.float64)
    y = b[valid].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / denominator if denominator > 0 else 0.0


def coverage(matrix: Matrix, master_shape: tuple[int, int], suspect_shape: tuple[int, int],
             step: int, margin: float) -> NDArray[np.bool_]:
    """Which step x step cells of the master lie inside the suspect copy (with a margin)."""
    rows, cols = master_shape[0] // step, master_shape[1] // step
    inside = np.ones((rows, cols), dtype=bool)
    for dy in (0, step):
        for dx in (0, step):
            y = (np.arange(rows) * step + dy)[:, None].astype(np.float64)
            x = (np.arange(cols) * step + dx)[None, :].astype(np.float64)
            u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
            v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
            inside &= (u >= margin) & (v >= margin)
            inside &= (u <= suspect_shape[1] - margin) & (v <= suspect_shape[0] - margin)
    return inside


def _valid_pixels(matrix: Matrix, master_shape: tuple[int, int],
                  suspect_shape: tuple[int, int]) -> NDArray[np.bool_]:
    return coverage(matrix, master_shape, suspect_shape, 1, 1.5)


def _suspect_coverage(matrix: Matrix, master_shape: tuple[int, int],
                      suspect_shape: tuple[int, int]) -> float:
    """Share of the suspect copy that maps inside the master: near 1 for a true match."""
    h, w = suspect_shape
    v, u = np.mgrid[0:h:8, 0:w:8].astype(np.float64) + 0.5
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))
    x = inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]
    y = inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]
    inside = (x >= 0) & (y >= 0) & (x <= master_shape[1]) & (y <= master_shape[0])
    return float(inside.mean())


class _Translator:
    """Finds the translation completing a candidate map; the master's transform is reused."""

    def __init__(self, master: Plane, suspect: Plane) -> None:
        h, w = master.shape
        self.master, self.suspect = master, suspect
        self.window = _window(h, w)
        self.size = (2 * h, 2 * w)
        centred = (master - master.mean()) * self.window
        self.master_spectrum = np.fft.rfft2(centred, s=self.size)

    def __call__(self, matrix: Matrix) -> tuple[Matrix, float]:
        master, suspect = self.master, self.suspect
        h, w = master.shape
        warped = warp(suspect, matrix, h, w)
        valid = _valid_pixels(matrix, master.shape, suspect.shape)
        mean = warped[valid].mean() if valid.any() else 0.0
        b = (warped - mean) * valid * self.window
        cross = self.master_spectrum * np.conj(np.fft.rfft2(b, s=self.size))
        cross /= np.abs(cross) + 1e-9
        surface = np.fft.irfft2(cross, s=self.size)
        i, j = np.unravel_index(int(np.argmax(surface)), surface.shape)
        y, x = _subpixel(surface, (int(i), int(j)))
        # warped(p) looks like master(p + d): master point x sits where warped has x - d.
        d = np.array([_wrapped(x, self.size[1]), _wrapped(y, self.size[0])])
        moved = matrix.copy()
        moved[:, 2] -= matrix[:, :2] @ d
        valid = _valid_pixels(moved, master.shape, suspect.shape)
        score = _ncc(master, warp(suspect, moved, h, w), valid)
        return moved, score * _suspect_coverage(moved, master.shape, suspect.shape)


def _coarse(master: Plane, suspect: Plane) -> list[tuple[Matrix, float]]:
    """Candidate similarity maps at working resolution, best first."""
    n = int(2 ** np.ceil(np.log2(max(*master.shape, *suspect.shape))))
    r_max = n * 0.3
    r_min = max(2.0, n / 128.0)
    lp_master = _log_polar(_spectrum(master, n), r_min, r_max)
    lp_suspect = _log_polar(_spectrum(suspect, n), r_min, r_max)
    surface = _correlation_surface(lp_suspect, lp_master)
    step = np.log(r_max / r_min) / (_RADII - 1)
    master_centre = np.array([master.shape[1], master.shape[0]], dtype=np.float64) / 2
    suspect_centre = np.array([suspect.shape[1], suspect.shape[0]], dtype=np.float64) / 2
    translate = _Translator(master, suspect)
    candidates = []
    for row, col, _ in _peaks(surface, _CANDIDATES):
        angle = _wrapped(row, _ANGLES) * np.pi / _ANGLES
        scale = float(np.exp(-_wrapped(col, _RADII) * step))
        for turn in (0.0, np.pi):
            start = _similarity(scale, angle + turn, master_centre, suspect_centre)
            candidates.append(translate(start))
    candidates.sort(key=lambda item: -item[1])
    if candidates[0][1] < _GOOD_MATCH:
        # Smooth pictures give Fourier-Mellin little to hold on to: try plain rescales too.
        for scale in np.exp(np.linspace(np.log(0.2), np.log(2.0), 25)):
            start = _similarity(float(scale), 0.0, master_centre, suspect_centre)
            candidates.append(translate(start))
        candidates.sort(key=lambda item: -item[1])
    return candidates


def _gradients(plane: Plane) -> tuple[Plane, Plane]:
    gy, gx = np.gradient(plane)
    return np.asarray(gx, np.float32), np.asarray(gy, np.float32)


def _lucas_kanade(master: Plane, suspect: Plane, matrix: Matrix, iterations: int) -> Matrix:
    """Gauss-Newton refinement of an affine map (and a gain and offset) on every pixel.

    Uses all the picture's gradients, so it also locks onto smooth images that have too
    little texture for patch matching; it converges from within a few pixels.
    """
    h, w = master.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    gx_s, gy_s = _gradients(suspect)
    for _ in range(iterations):
        warped = warp(suspect, matrix, h, w)
        gx = warp(gx_s, matrix, h, w)
        gy = warp(gy_s, matrix, h, w)
        valid = _valid_pixels(matrix, master.shape, suspect.shape)
        if valid.sum() < 256:
            break
        stride = max(1, int(valid.sum()) // _MAX_SAMPLES)
        pick = np.flatnonzero(valid)[::stride]
        xs, ys, gxs, gys = x.ravel()[pick], y.ravel()[pick], gx.ravel()[pick], gy.ravel()[pick]
        columns = [gxs * xs, gxs * ys, gxs, gys * xs, gys * ys, gys, -master.ravel()[pick],
                   -np.ones_like(xs)]
        design = np.stack(columns, axis=1).astype(np.float64)
        target = -warped.ravel()[pick].astype(np.float64)
        # warped + design @ delta ~ gain * master + offset, with the gain and offset as unknowns.
        # Reweighted so that what is not in the master (a rotation's filled corners, a logo)
        # does not pull the fit.
        weights = np.ones_like(target)
        for _ in range(2):
            weighted = design * weights[:, None]
            normal = weighted.T @ design
            normal += np.eye(normal.shape[0]) * 1e-9 * np.trace(normal)
            delta = np.linalg.solve(normal, weighted.T @ target)
            residual = target - design @ delta
            spread = 2.5 * float(np.median(np.abs(residual))) + 1e-6
            weights = 1.0 / (1.0 + np.square(residual / spread))
        step = delta[:6].reshape(2, 3)
        matrix = matrix + step
        if np.abs(step[:, :2]).max() * max(h, w) < 0.02 and np.abs(step[:, 2]).max() < 0.02:
            break
    return matrix


def _scaled(plane: Plane, factor: float) -> Plane:
    if factor == 1.0:
        return plane
    h, w = plane.shape
    return resize(plane, max(1, round(w * factor)), max(1, round(h * factor)))


def _rescale(matrix: Matrix, ratio: float) -> Matrix:
    """The same map in coordinates multiplied by `ratio` (both images resized alike)."""
    out = matrix.copy()
    out[:, 2] *= ratio
    return out


def round_trip(plane: Plane, matrix: Matrix, suspect_shape: tuple[int, int]) -> Plane:
    """`plane` (in the master's frame) taken to the suspect's frame and back.

    What the copy lost to resampling (detail above its Nyquist frequency when it was made
    smaller) is lost here too, so subtracting this from the registered copy leaves the
    mark, not the master's missing detail.
    """
    h, w = plane.shape
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    source, to_source = plane, np.eye(3)
    if scale < 0.95:
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        source = np.asarray(_to_image(plane).resize((sw, sh), Image.Resampling.BICUBIC), np.float32)
        to_source = np.diag([sw / w, sh / h, 1.0])
    square = np.vstack([matrix, [0.0, 0.0, 1.0]])
    suspect_to_source = (to_source @ np.linalg.inv(square))[:2]
    there = warp(source, suspect_to_source, suspect_shape[0], suspect_shape[1])
    return warp(there, matrix, h, w, cubic=True)


def register(suspect: Plane, master: Plane) -> Alignment:
    """The affine map putting `suspect` onto `master`, with a correlation to judge it by."""
    longest = max(master.shape)
    factor = min(1.0, WORK_SIDE / longest)
    small_master, small_suspect = _scaled(master, factor), _scaled(suspect, factor)
    matrix, _ = _coarse(small_master, small_suspect)[0]
    matrix = _lucas_kanade(small_master, small_suspect, matrix, 30)
    finest = min(1.0, FINE_SIDE / longest)
    while factor < finest:
        level = min(finest, factor * 2.0)
        matrix = _rescale(matrix, level / factor)
        matrix = _lucas_kanade(_scaled(master, level), _scaled(suspect, level), matrix, 10)
        factor = level
    full = _rescale(matrix, 1.0 / factor)
    h, w = master.shape
    valid = _valid_pixels(full, master.shape, suspect.shape)
    correlation = _ncc(master, warp(suspect, full, h, w), valid)
    values = tuple(float(v) for v in full.ravel())
    return Alignment(values, correlation, float(valid.mean()))  # type: ignore[arg-type]
