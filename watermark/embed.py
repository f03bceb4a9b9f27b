"""Embedding: add a keyed, perceptually shaped spread-spectrum pattern to luminance.

Each of the 282 coded symbols is spread over its share of cells (see `pattern`); a cell adds
`+-amplitude * bump` to luminance, the amplitude following the texture mask (see `mask`) and
scaled so the image lands on the PSNR budget.

Host cancellation (improved spread spectrum, Malvar and Florencio 2003): a blind reader sees
the picture's own correlation with each bit's pattern as noise, and on small images it is the
largest noise there is. The embedder can compute that correlation exactly, so instead of one
amplitude for all bits it gives each bit the amplitude that brings its detector output to a
common margin T: bits the picture already favours need little, bits it opposes get more.
T is set so the total energy still meets the budget; every bit keeps at least `min_share`
of the plain amplitude (so an informed reader, which subtracts the picture, still finds
every bit) and at most `max_share` (so no bit's cells become visible).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from watermark import grid
from watermark.detect import BlindStatistic, blind_statistic, chip_gain
from watermark.errors import EmbedCheckError
from watermark.mask import candidate_cells, choose_cell
from watermark.params import DEFAULT, Params
from watermark.pattern import Layout, layout
from watermark.payload import CODED_BITS, codeword, validate_key, validate_payload
from watermark.planes import DEFAULT_MAX_PIXELS, to_planes
from watermark.selfcheck import check_marked


def bit_shares(
    stat: BlindStatistic,
    lay: Layout,
    symbols: NDArray[np.float64],
    amplitude: NDArray[np.float32],
    params: Params,
) -> NDArray[np.float64]:
    """Per-bit amplitude multipliers that cancel host interference within the same energy."""
    if not params.host_cancel:
        return np.ones(lay.n_bits)
    host = lay.per_bit(stat.residual * stat.weight * lay.chip) * symbols
    gain = lay.per_bit(stat.weight * amplitude) * chip_gain(params)
    energy = lay.per_bit(np.square(amplitude, dtype=np.float64))
    target_energy = float(energy.sum())
    gain = np.maximum(gain, 1e-12)

    def shares(margin: float) -> NDArray[np.float64]:
        return np.clip((margin - host) / gain, params.min_share, params.max_share)

    # Below `low` every share sits at min_share, above `high` at max_share: bisect between.
    low = float((host + gain * params.min_share).min())
    high = float((host + gain * params.max_share).max())
    for _ in range(50):
        middle = 0.5 * (low + high)
        if float((np.square(shares(middle)) * energy).sum()) > target_energy:
            high = middle
        else:
            low = middle
    return shares(low)


def mark_cells(
    luma: NDArray[np.float32], key: bytes, payload: int, params: Params
) -> NDArray[np.float32]:
    """Signed amplitude of every cell's chip for this image, key and payload."""
    params = params.with_cell(choose_cell(luma, params))
    rows, cols = grid.cell_shape(luma.shape[0], luma.shape[1], params.cell)
    lay = layout(key, rows, cols, CODED_BITS)
    symbols = codeword(key, payload)
    stat = blind_statistic(luma, params)
    amplitude = stat.amplitude
    shares = bit_shares(stat, lay, symbols, amplitude, params)
    per_bit = (symbols * shares).astype(np.float32)
    return np.asarray(amplitude * lay.chip * per_bit[lay.bit], np.float32)


def embed(
    image: Image.Image,
    key: bytes,
    payload: int,
    *,
    params: Params = DEFAULT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """A copy of `image` carrying `payload` under `key`, in the same mode (palette: RGB/RGBA).

    The copy is checked before it is returned (`selfcheck`): at least `params.psnr_floor`
    dB from the input, and the payload reads back blind. It is marked with the cell side
    `mask.choose_cell` picks; if that copy fails its check, it is marked again with the
    other side the readers try (a small smooth picture's large cells can be too few to
    carry the code past its hard edges). Raises `InvalidKeyError`, `InvalidPayloadError`,
    an `UnsupportedImageError` subclass for an image it will not mark, or
    `EmbedCheckError` when no copy passed its check.
    """
    raw_key = validate_key(key)
    value = validate_payload(payload)
    planes = to_planes(image, max_pixels)
    luma = planes.luma
    failures: list[EmbedCheckError] = []
    for cell in candidate_cells(luma, params):
        cell_params = params.with_cell(cell)
        cells = mark_cells(luma, raw_key, value, cell_params)
        delta = grid.spread(cells, cell, luma.shape[0], luma.shape[1])
        try:
            marked = planes.with_luma_added(delta)
            check_marked(planes, marked, raw_key, value, cell_params)
        except EmbedCheckError as error:
            failures.append(error)
            continue
        return marked.image()
    raise failures[0]
