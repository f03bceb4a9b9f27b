"""Reading the mark: blind from the suspect alone, or informed with the master.

Blind: the detector statistic of `detect`, on the copy as it is (same size as the marked
file; a resized copy must be resized back, a cropped or rotated one needs the master).

Informed (the tracer's case): the copy is registered to the master (`register`), resampled
into the master's frame, and the master, taken through the same resampling so it loses what
the copy lost, is subtracted with a fitted gain and offset. What remains is the mark plus
the attack's noise, with no picture left in it. Cells the copy does not cover (a crop) get
zero weight. Each bit's amplitude is then estimated by weighted least squares against the
expected pattern (also taken through the resampling); since the embedder chose that
amplitude to bring the master's own detector output to a common margin, adding the master's
detector output back turns the estimate into a value whose sign is the bit.

Both readers try the two cell sides the embedder may have used: the one `mask.choose_cell`
picks first, then the other (the embedder falls back to it when its own check fails; see
`embed`). Every read ends in the keyed check (`payload`): a read either names the payload
the key's holder embedded or says "no mark". The few readings tried per call (blind: one
per cell side; informed: at most three per cell side, registering only once) each have a
2**-24 chance of a false match, so a call's false-positive rate is below 4e-7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watermark import grid
from watermark.detect import blind_statistic, chip_gain, soft_bits
from watermark.mask import candidate_cells
from watermark.params import DEFAULT, Params
from watermark.pattern import layout
from watermark.payload import CODED_BITS, decode, validate_key
from watermark.planes import DEFAULT_MAX_PIXELS, MIN_SUSPECT_PIXELS, luma_of
from watermark.register import Alignment, coverage, register, round_trip, warp
from watermark.result import ExtractResult

__all__ = ["ExtractResult", "extract"]

Soft = NDArray[np.float64]


def _decided(soft: Soft, key: bytes, *, informed: bool, alignment: Alignment | None = None
             ) -> ExtractResult:
    decoded = decode(key, soft)
    return ExtractResult(decoded.check_ok, decoded.payload, decoded.bit_errors, decoded.score,
                         informed, alignment)


def blind_soft(luma: NDArray[np.float32], key: bytes, params: Params) -> Soft:
    """Soft values of a blind read with the cell side in `params` (which must be set)."""
    rows, cols = grid.cell_shape(luma.shape[0], luma.shape[1], params.cell)
    return soft_bits(blind_statistic(luma, params), layout(key, rows, cols, CODED_BITS))


MIN_GAIN = 0.05
"""Least contrast (as a share of the master's) an informed read divides by; see `fit_gain`."""


def fit_gain(master: NDArray[np.float32], copy: NDArray[np.float32]) -> tuple[float, float]:
    """Gain and offset that best map the master's pixels onto the copy's (least squares).

    A flat master (all black, all white) says nothing about contrast: its gain column is
    constant, the fit is degenerate, and a gain of zero would be divided by below. Such a
    master, or a fit that leaves less than `MIN_GAIN` of its contrast, is taken at gain 1
    with the mean difference as the offset: the copy's contrast cannot be measured, and
    assuming it unchanged is the reading that can still find a mark.
    """
    x = master.astype(np.float64)
    y = copy.astype(np.float64)
    if x.size == 0:
        return 1.0, 0.0
    spread = float(np.var(x))
    if spread > 1e-6:
        gain = float(np.mean((x - x.mean()) * (y - y.mean()))) / spread
        if np.isfinite(gain) and abs(gain) >= MIN_GAIN:
            return gain, float(y.mean()) - gain * float(x.mean())
    return 1.0, float(y.mean() - x.mean())


@dataclass(frozen=True)
class Registered:
    """A suspect copy put into the master's frame: what every cell side's read shares."""

    alignment: Alignment
    matrix: NDArray[np.float64]
    warped: NDArray[np.float32]
    """The copy resampled onto the master's pixel grid."""
    seen: NDArray[np.float32]
    """The master taken to the copy's frame and back: it lost what the copy lost."""
    suspect_shape: tuple[int, int]


def registered(suspect: NDArray[np.float32], master: NDArray[np.float32]) -> Registered:
    """Register the copy to the master once, for reads at any cell side."""
    alignment = register(suspect, master)
    matrix = np.array(alignment.matrix, dtype=np.float64).reshape(2, 3)
    h, w = master.shape
    shape = (suspect.shape[0], suspect.shape[1])
    return Registered(alignment, matrix, warp(suspect, matrix, h, w, cubic=True),
                      round_trip(master, matrix, shape), shape)


def informed_soft(copy: Registered, master: NDArray[np.float32], key: bytes,
                  params: Params) -> tuple[Soft, Soft]:
    """Soft values from the registered copy at the cell side in `params` (which must be set):
    host-compensated, and the plain estimate."""
    matrix, warped, seen = copy.matrix, copy.warped, copy.seen
    h, w = master.shape
    valid = coverage(matrix, master.shape, copy.suspect_shape, params.cell, 2.0)
    rows, cols = valid.shape
    inside = np.zeros(master.shape, dtype=bool)
    inside[: rows * params.cell, : cols * params.cell] = np.kron(
        valid, np.ones((params.cell, params.cell), dtype=bool))

    gain, offset = fit_gain(seen[inside], warped[inside])
    residual = np.where(inside, warped - (gain * seen + offset), 0.0).astype(np.float32)
    cells = grid.cell_weighted_sums(residual, params.cell)
    cells = cells - grid.box_mean(cells, 2)

    host = blind_statistic(master, params)
    lay = layout(key, rows, cols, CODED_BITS)
    unit = grid.spread(host.amplitude * lay.chip, params.cell, h, w)
    template = grid.cell_weighted_sums(round_trip(unit, matrix, copy.suspect_shape),
                                       params.cell)
    expected = (template - grid.box_mean(template, 2)) * lay.chip

    floor = np.float32(chip_gain(params) * params.read_noise**2)
    weight = np.where(valid, 1.0 / (grid.box_mean(np.square(cells), 2) + floor), 0.0)
    values = lay.per_bit(weight * cells * lay.chip * expected)
    power = np.maximum(lay.per_bit(weight * np.square(expected)), 1e-12)
    plain = values / np.sqrt(power)

    share = values / power / gain
    host_gain = lay.per_bit(host.weight * host.amplitude) * chip_gain(params)
    host_stat = lay.per_bit(host.residual * host.weight * lay.chip)
    noise = np.maximum(host_gain / np.sqrt(power) / abs(gain), 1e-12)
    compensated = (share * host_gain + host_stat) / noise
    return np.asarray(compensated, np.float64), np.asarray(plain, np.float64)


def _blind(luma: NDArray[np.float32], key: bytes, params: Params) -> ExtractResult:
    """Try each cell side the embedder may have chosen; report the likeliest if none fits."""
    tried = []
    for cell in candidate_cells(luma, params):
        result = _decided(blind_soft(luma, key, params.with_cell(cell)), key, informed=False)
        if result.found:
            return result
        tried.append(result)
    return tried[0]


def extract(
    image: Image.Image,
    key: bytes,
    reference: Image.Image | None = None,
    *,
    params: Params = DEFAULT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ExtractResult:
    """Read the payload `key`'s holder embedded in `image`, if there is one.

    With `reference` (the unmarked master) the read is informed and undoes crop, scale and
    small rotation first; without it the copy must have the marked file's size.
    Raises `InvalidKeyError` or an `UnsupportedImageError` subclass.
    """
    raw_key = validate_key(key)
    if reference is None:
        return _blind(luma_of(image, max_pixels), raw_key, params)
    luma = luma_of(image, max_pixels, MIN_SUSPECT_PIXELS)
    master = luma_of(reference, max_pixels)
    return _informed(luma, master, raw_key, params)


def _informed(luma: NDArray[np.float32], master: NDArray[np.float32], key: bytes,
              params: Params) -> ExtractResult:
    """Register once; read at the master's cell side, then at the other one the embedder
    falls back to when its own check fails there (see `embed`)."""
    copy = registered(luma, master)
    tried = []
    for cell in candidate_cells(master, params):
        cell_params = params.with_cell(cell)
        compensated, plain = informed_soft(copy, master, key, cell_params)
        for soft in (compensated, plain):
            result = _decided(soft, key, informed=True, alignment=copy.alignment)
            if result.found:
                return result
            tried.append(result)
        if luma.shape == master.shape:
            result = _decided(blind_soft(luma, key, cell_params), key, informed=False)
            if result.found:
                return result
    return tried[0]
