"""The reader's statistic: per cell, how much the lower half of a band rose against the upper.

The mark raises one half of a band and lowers the other (which half, the cell's sign says),
so the reader looks at the difference of the halves' log power. What the music does to
both halves at once, a drum hit, a crescendo, a fade, a change of gain, cancels in that
difference; what it holds for a while, a note sitting in one half, is removed by
subtracting what the neighbouring steps predict of it. Each cell is then weighted by the
inverse variance of its neighbourhood: busy passages count less. A blind decode instead
counts each cell in units of its neighbourhood's deviation and weighs it by how much mark
cells of its kind carry in this copy, measured on the sync cells (`class_weighted`).
Everything is blind: it needs the suspect copy alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.audio.layout import SYNC, AudioLayout
from watermark.audio.params import (
    CELL_LIMIT,
    FLOOR_PERCENTILE,
    FLOOR_RANGE_DB,
    GROUP_EDGES_HZ,
    HIGHPASS_STEPS,
    LEVEL_EDGES_DB,
    MIN_CLASS_SYNC,
    PERIOD_STEPS,
    STEP_HOPS,
    SYNC_SHARE,
    WEIGHT_BANDS,
    WEIGHT_STEPS,
)
from watermark.audio.spectrum import BANDS, band_edges_hz
from watermark.payload import CODED_BITS

Floats = NDArray[np.float64]

_FLOOR = 1e-9  # power below this is silence: both halves' logs sit at the same floor
_VARIANCE_FLOOR = 1e-3


def _running_mean(values: Floats, half: int, axis: int) -> Floats:
    """Mean over ``2 half + 1`` neighbours along ``axis`` (negative), edges repeated (one
    cumulative sum, whatever the width)."""
    def along(part: slice) -> tuple[slice, ...]:
        index = [slice(None)] * values.ndim
        index[axis] = part
        return tuple(index)

    size = values.shape[axis]
    padded = np.concatenate([np.repeat(values[along(slice(0, 1))], half, axis=axis), values,
                             np.repeat(values[along(slice(size - 1, size))], half, axis=axis)],
                            axis=axis)
    table = np.cumsum(padded, axis=axis)
    total = table[along(slice(2 * half, None))].copy()
    total[along(slice(1, None))] -= table[along(slice(0, size - 1))]
    return np.asarray(total / (2 * half + 1), np.float64)


def _box_mean(values: Floats, steps: int, bands: int) -> Floats:
    """Mean over a (2 steps + 1) x (2 bands + 1) box of the last two axes, edges repeated."""
    out = _running_mean(values, steps, -2)
    return _running_mean(out, bands, -1) if bands else out


def whitened(difference: Floats, inside: NDArray[np.bool_], *, highpass: bool = True,
             weight: Floats | None = None) -> Floats:
    """High-passed and variance-weighted cells; cells outside the signal are zero. An
    informed read, which has subtracted the master already, skips the high-pass. Leading
    axes, if any, are separate reads (the phases of a blind read's speed). ``weight``
    (`above_floor`) scales each cell further."""
    residual = difference - _box_mean(difference, HIGHPASS_STEPS, 0) if highpass else difference
    weighted = residual / (_box_mean(residual**2, WEIGHT_STEPS, WEIGHT_BANDS) + _VARIANCE_FLOOR)
    if weight is not None:
        weighted = weighted * weight
    return weighted * inside[..., None]


def interpolation_residual(difference: Floats, steady: NDArray[np.bool_]) -> Floats:
    """Per band, each step's difference less what its two neighbouring steps predict of it:
    ``x[t] - c (x[t-1] + x[t+1])``, ``x`` the difference less the band's mean, ``c`` fit by
    least squares over the read's steady steps (steps on the second last axis; leading
    axes are separate reads).

    A fixed moving average suits neither of the two things a voice does: in its pauses the
    difference is room noise, new every step, best left alone (``c`` near 0); in its
    syllables the harmonics glide across a band's halves over several steps, where a step
    is nearly the mean of its neighbours (``c`` near 1/2). The fit finds which, band by
    band, in this copy. The mark, a fresh keyed sign every step, is not predicted by its
    neighbours and stays whole."""
    mask = steady[..., None].astype(np.float64)
    count = np.maximum(mask.sum(axis=-2, keepdims=True), 1.0)
    centred = difference - (difference * mask).sum(axis=-2, keepdims=True) / count
    padded = np.concatenate([centred[..., :1, :], centred, centred[..., -1:, :]], axis=-2)
    neighbours = padded[..., :-2, :] + padded[..., 2:, :]
    fit = (centred * neighbours * mask).sum(axis=-2, keepdims=True)
    spread = (neighbours * neighbours * mask).sum(axis=-2, keepdims=True)
    share = fit / np.maximum(spread, 1e-12)
    return np.asarray(centred - share * neighbours, np.float64)


def residual_cells(difference: Floats, steady: NDArray[np.bool_], *,
                   standardised: bool = False) -> Floats:
    """A blind read's cells: the `interpolation_residual`, weighted by the inverse variance
    of its neighbourhood (the sync search), or, ``standardised``, divided by its
    neighbourhood's deviation and held within +-`CELL_LIMIT` (the decode, which leaves the
    weighting to `class_weighted`); cells outside the signal are zero. Leading axes are
    separate reads."""
    residual = interpolation_residual(difference, steady)
    variance = _box_mean(residual**2, WEIGHT_STEPS, WEIGHT_BANDS) + _VARIANCE_FLOOR
    if standardised:
        cells = np.clip(residual / np.sqrt(variance), -CELL_LIMIT, CELL_LIMIT)
    else:
        cells = residual / variance
    return np.asarray(cells * steady[..., None], np.float64)


def class_weighted(cells: Floats, level_db: Floats, steady: NDArray[np.bool_],
                   layout: AudioLayout, offset: int) -> Floats:
    """``cells`` (steps x bands, the copy's first row the period's row ``offset``), each
    scaled by its class's evidence: the mean agreement of the class's sync cells with the
    sync pattern over the variance of all its cells (a matched filter whose gains are
    measured in this copy), zero where that is not positive or rests on fewer than
    `MIN_CLASS_SYNC` sync cells. Classes: level above the band's floor (``level_db``,
    `level_above_floor_db`) cut at `LEVEL_EDGES_DB`, times band group (`GROUP_EDGES_HZ`).

    Why measured: whether quiet cells carry the mark depends on what made them quiet. In
    the pauses of a speech excerpt the mark rode on the room noise and those cells carry it
    best of all; fill the same pauses with added noise and they carry none. A fixed
    weighting by level must get one of the two wrong. The sync cells are a quarter of all
    cells, so every class with a few hundred cells gets its gain measured to within a
    fraction of itself; the data cells, which carry the payload, are not used to set it."""
    rows = (np.arange(cells.shape[0]) + offset) % PERIOD_STEPS
    groups = len(GROUP_EDGES_HZ) + 1
    group = np.digitize(np.asarray(band_edges_hz()[:-1]), GROUP_EDGES_HZ)
    kind = np.digitize(level_db, LEVEL_EDGES_DB) * groups + group[None, :]
    classes = (len(LEVEL_EDGES_DB) + 1) * groups
    inside = np.broadcast_to(steady[:, None], cells.shape)
    sync = inside & (layout.bit[rows] == SYNC)
    agreement = np.bincount(kind[sync], weights=(cells * layout.chip[rows])[sync],
                            minlength=classes)
    sync_count = np.bincount(kind[sync], minlength=classes)
    count = np.maximum(np.bincount(kind[inside], minlength=classes), 1)
    mean = np.bincount(kind[inside], weights=cells[inside], minlength=classes) / count
    variance = (np.bincount(kind[inside], weights=cells[inside] ** 2, minlength=classes)
                / count - mean**2)
    evidence = agreement / np.maximum(sync_count, 1)
    usable = (sync_count >= MIN_CLASS_SYNC) & (evidence > 0) & (variance > 0)
    gain = np.where(usable, evidence / np.where(usable, variance, 1.0), 0.0)
    return np.asarray(cells * gain[kind], np.float64)


def above_floor(power: Floats) -> Floats:
    """Per cell, how far its band's power (steps on the second last axis) stands above
    that band's floor in this copy, from 0 at the floor to 1 at `FLOOR_RANGE_DB` above.

    Noise added to a copy (hiss, a noisy transmission) fills the pauses and the gaps
    between a voice's formants, where the music was quiet: there the multiplicative mark
    is diluted to nearly nothing, while the noise's own half-band differences vary
    little, so the variance weighting alone would count those cells most. A clean copy
    loses little by this, since the mark is faint where the music is quiet anyway. (A
    blind decode weighs cells by `class_weighted` instead; the sync search and the
    embedder's self-check use this.)"""
    return np.asarray(np.clip(level_above_floor_db(power) / FLOOR_RANGE_DB, 0.0, 1.0),
                      np.float64)


def level_above_floor_db(power: Floats) -> Floats:
    """Per cell, its band's power (steps on the second last axis) in dB above that band's
    floor in this copy (its `FLOOR_PERCENTILE` percentile over the steps)."""
    level = 10 * np.log10(power + _FLOOR)
    floor = np.percentile(level, FLOOR_PERCENTILE, axis=-2, keepdims=True)
    return np.asarray(level - floor, np.float64)


def step_powers(low: Floats, high: Floats) -> tuple[Floats, Floats]:
    """Per step and band, the lower and the upper half's power, from per-hop powers
    (hops on the second last axis)."""
    steps = low.shape[-2] // STEP_HOPS
    return _step_sum(low, steps), _step_sum(high, steps)


def step_difference(low: Floats, high: Floats) -> Floats:
    """Per step and band, log power of the lower half minus the upper (`step_powers`)."""
    return np.asarray(np.log(low + _FLOOR) - np.log(high + _FLOOR), np.float64)


def _step_sum(per_hop: Floats, steps: int) -> Floats:
    """Per-hop values (hops on the second last axis) added up per step."""
    total = per_hop[..., 0: steps * STEP_HOPS: STEP_HOPS, :].copy()
    for hop in range(1, STEP_HOPS):
        total += per_hop[..., hop: steps * STEP_HOPS: STEP_HOPS, :]
    return total


def read_steps(frames: int, *, per_hop: int, speed: float, phase: int) -> int:
    """How many whole steps a read at ``speed`` from fine frame ``phase`` finds in a copy
    analysed in ``frames`` frames, ``per_hop`` to a master hop."""
    return max(0, int((frames - 1 - phase) * speed / (per_hop * STEP_HOPS)))


def read_powers(low: Floats, high: Floats, inside: NDArray[np.bool_], *, per_hop: int,
                speed: float, phases: NDArray[np.intp]
                ) -> tuple[Floats, Floats, NDArray[np.bool_]]:
    """Per step and band, the lower and the upper half's power of a copy analysed at a fine
    hop (``per_hop`` frames per master hop; ``low`` and ``high`` its frames' half-band
    powers, the bands stretched to ``speed``), read where the master's hops fall in it at
    ``speed``, from each of ``phases`` fine frames in; and which steps lie wholly inside the
    copy. Shapes (phases, steps, bands) and (phases, steps): the phases must give the same
    number of steps (`read_steps`). Choosing frames from one fine analysis keeps a speed
    search cheap."""
    frames = low.shape[0]
    steps = read_steps(frames, per_hop=per_hop, speed=speed, phase=int(phases[0]))
    hops = np.arange(steps * STEP_HOPS)
    chosen = np.minimum(np.round((phases[:, None] + per_hop * hops) / speed).astype(np.intp),
                        frames - 1)
    steady = inside[chosen].reshape(phases.size, steps, STEP_HOPS).all(axis=-1)
    low_steps, high_steps = step_powers(low[chosen], high[chosen])
    return low_steps, high_steps, steady


def read_difference(low: Floats, high: Floats, inside: NDArray[np.bool_], *, per_hop: int,
                    speed: float, phases: NDArray[np.intp]
                    ) -> tuple[Floats, NDArray[np.bool_], Floats]:
    """The cells' half-band differences read as `read_powers` reads the powers; which steps
    lie wholly inside the copy; and each cell's level above its band's floor
    (`above_floor`). Shapes (phases, steps, bands), (phases, steps) and (phases, steps,
    bands)."""
    low_steps, high_steps, steady = read_powers(low, high, inside, per_hop=per_hop,
                                                speed=speed, phases=phases)
    return (step_difference(low_steps, high_steps), steady,
            above_floor(low_steps + high_steps))


def sync_scores(cells: Floats, layout: AudioLayout) -> Floats:
    """For each offset into the period, the normalised correlation of the cells with the
    sync pattern (about N(0, 1) where there is no mark); leading axes are separate reads.
    The cells are folded onto one period first, so every offset costs one FFT product
    whatever the copy's length."""
    steps = cells.shape[-2]
    periods = -(-steps // PERIOD_STEPS)
    whole = np.zeros((*cells.shape[:-2], periods * PERIOD_STEPS, BANDS))
    whole[..., :steps, :] = cells
    folded = whole.reshape(*cells.shape[:-2], periods, PERIOD_STEPS, BANDS).sum(axis=-3)
    pattern = layout.sync_chips
    spectrum = np.conj(np.fft.rfft(folded, axis=-2)) * np.fft.rfft(pattern, axis=0)
    scores = np.fft.irfft(spectrum, n=PERIOD_STEPS, axis=-2).sum(axis=-1)
    noise = np.sqrt(np.square(cells).sum(axis=(-2, -1)) / SYNC_SHARE)
    return np.asarray(scores / np.maximum(noise, 1e-12)[..., None], np.float64)


def soft_values(cells: Floats, layout: AudioLayout, offset: int) -> Floats:
    """One soft value per coded bit, scaled so that noise alone has unit variance; the copy's
    first cell row is the period's row ``offset``."""
    rows = (np.arange(cells.shape[0]) + offset) % PERIOD_STEPS
    bit, chip = layout.bit[rows], layout.chip[rows]
    data = bit >= 0
    sums = np.bincount(bit[data], weights=(cells * chip)[data], minlength=CODED_BITS)
    noise = np.sqrt(np.bincount(bit[data], weights=np.square(cells)[data], minlength=CODED_BITS))
    return np.asarray(sums / np.maximum(noise, 1e-12), np.float64)
