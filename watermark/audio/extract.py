"""Reading the audio mark: blind from the suspect alone, or informed with the master.

Blind: one analysis of the copy at a quarter-hop, then for each speed within +-2% (0.25%
apart) and each of the four quarter-hop phases, the cells are read off it and correlated
with the keyed sync pattern at every offset into the period at once (`sync_scores`).
That is 68 cheap reads, not 68 analyses, and finds an excerpt's place and a speed change
(pitch moving with it) without a brute-force decode. The best three placements are
decoded; the keyed check decides, so a copy without this key's mark reads as "no mark"
(three tries at 2**-24 each: below 2e-7 per read).

Informed (the tracer's case): the copy is placed against the master by correlating their
cells' own structure (the music, not the mark), the master's cells are subtracted, and
what remains is the mark and the attack's noise, with no music left in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from watermark.audio.layout import AudioLayout, audio_layout
from watermark.audio.params import (
    HOP_SECONDS,
    PERIOD_STEPS,
    SPEED_STEP,
    SPEED_STEPS,
    STEP_HOPS,
)
from watermark.audio.samples import as_float
from watermark.audio.spectrum import frame_length, power_prefix
from watermark.audio.statistic import read_difference, soft_values, sync_scores, whitened
from watermark.payload import decode, validate_key
from watermark.result import ExtractResult

Floats = NDArray[np.float64]

NOTHING = ExtractResult(found=False, payload=None, bit_errors=0, score=0.0)
NOTHING_INFORMED = ExtractResult(found=False, payload=None, bit_errors=0, score=0.0,
                                 informed=True)

PER_HOP = 4
"""Fine frames per master hop in a blind read: a reader at most an eighth of a hop off."""
TRIES = 3
TRUSTED_SYNC = 6.0
"""A sync peak this high (in noise standard deviations, over 68 placements x 150 offsets)
is not chance: an informed read takes its speed instead of trying them all."""
MIN_READ_SECONDS = 7.5
"""A read needs a whole period (7.0 s) and its frames' edges."""


@dataclass(frozen=True)
class _Placement:
    score: float
    speed: float
    phase: int
    offset: int
    cells: Floats


def _speeds() -> Floats:
    return np.asarray(1.0 + np.arange(-SPEED_STEPS, SPEED_STEPS + 1) * SPEED_STEP, np.float64)


def _fine_analysis(mono: Floats, sample_rate: int) -> tuple[Floats, NDArray[np.bool_], int]:
    length = frame_length(sample_rate)
    fine = length // (2 * PER_HOP)
    starts = np.arange(max(0, (mono.size - length) // fine + 1)) * fine
    prefix, inside = power_prefix(mono, starts, length)
    return prefix, inside, length


def _placements(mono: Floats, sample_rate: int, layout: AudioLayout) -> list[_Placement]:
    prefix, inside, length = _fine_analysis(mono, sample_rate)
    found = []
    for speed in _speeds():
        for phase in range(PER_HOP * STEP_HOPS):
            difference, steady = read_difference(
                prefix, inside, length=length, sample_rate=sample_rate, per_hop=PER_HOP,
                speed=float(speed), phase=phase)
            if difference.shape[0] < PERIOD_STEPS:
                continue
            cells = whitened(difference, steady)
            scores = sync_scores(cells, layout)
            offset = int(np.argmax(scores))
            found.append(_Placement(float(scores[offset]), float(speed), phase, offset, cells))
    found.sort(key=lambda placement: -placement.score)
    return found


def _result(soft: Floats, key: bytes, placement: _Placement, sample_rate: int, *,
            informed: bool) -> ExtractResult:
    decoded = decode(key, soft)
    hop = frame_length(sample_rate) // 2 / sample_rate
    # where in the copy a period begins: the read's start, then the rest of the period
    steps_to_start = (PERIOD_STEPS - placement.offset) % PERIOD_STEPS
    offset = (placement.phase * hop / PER_HOP
              + steps_to_start * STEP_HOPS * HOP_SECONDS / placement.speed)
    return ExtractResult(decoded.check_ok, decoded.payload, decoded.bit_errors, decoded.score,
                         informed=informed, offset_seconds=offset, speed=placement.speed)


def _blind(mono: Floats, sample_rate: int, key: bytes) -> ExtractResult:
    layout = audio_layout(key)
    placements = _placements(mono, sample_rate, layout)
    if not placements:
        return NOTHING
    best: ExtractResult | None = None
    for placement in placements[:TRIES]:
        result = _result(soft_values(placement.cells, layout, placement.offset), key,
                         placement, sample_rate, informed=False)
        if result.found:
            return result
        best = best or result
    assert best is not None
    return best


def _on_master_timeline(mono: Floats, rate: int, master_rate: int, speed: float) -> Floats:
    """The copy resampled onto the master's rate and speed (linear interpolation: the
    marked band ends at 7 kHz, far below where it loses anything that matters here)."""
    step = rate / master_rate / speed
    positions = np.arange(int((mono.size - 1) / step)) * step
    return np.asarray(np.interp(positions, np.arange(mono.size), mono), np.float64)


def _lag(copy: Floats, master: Floats) -> tuple[int, float]:
    """Where in the master the copy starts, to the sample, and how well it fits there
    (normalised cross-correlation of the waveforms, by FFT)."""
    size = 1 << int(np.ceil(np.log2(master.size + copy.size)))
    product = np.fft.rfft(master, size) * np.conj(np.fft.rfft(copy, size))
    correlation = np.fft.irfft(product, size)[: master.size - copy.size + 1]
    lag = int(np.argmax(correlation))
    energy = float(np.sqrt(np.square(copy).sum() * np.square(master[lag: lag + copy.size]).sum()))
    return lag, float(correlation[lag]) / max(energy, 1e-30)


def _grid_difference(signal: Floats, first_frame: int, start: int, frames: int, *,
                     length: int, sample_rate: int) -> tuple[Floats, NDArray[np.bool_]]:
    """Cells of ``signal`` (which begins at master sample ``start``) on the master's hop
    grid, from hop ``first_frame``."""
    hop = length // 2
    starts = (first_frame + np.arange(frames)) * hop - start
    prefix, inside = power_prefix(signal, starts.astype(np.intp), length)
    return read_difference(prefix, inside, length=length, sample_rate=sample_rate, per_hop=1,
                           speed=1.0, phase=0)


def _informed(mono: Floats, sample_rate: int, master: Floats, master_rate: int,
              key: bytes) -> ExtractResult:
    """Register the copy onto the master (speed from the blind sync where it is sure,
    else the best-fitting speed; start by waveform correlation), subtract the master's
    cells and read what is left."""
    layout = audio_layout(key)
    placements = _placements(mono, sample_rate, layout)
    if placements and placements[0].score >= TRUSTED_SYNC:
        speeds = [placements[0].speed]
    else:
        speeds = [float(speed) for speed in _speeds()]
    fits = []
    for speed in speeds:
        copy = _on_master_timeline(mono, sample_rate, master_rate, speed)
        if copy.size > master.size:
            continue
        lag, fit = _lag(copy, master)
        fits.append((fit, speed, lag, copy))
    if not fits:
        return NOTHING_INFORMED
    _fit, speed, lag, copy = max(fits, key=lambda found: found[0])
    length = frame_length(master_rate)
    hop = length // 2
    first = -(-lag // (STEP_HOPS * hop)) * STEP_HOPS  # the first whole step inside the copy
    frames = (lag + copy.size - length) // hop + 1 - first
    if frames < STEP_HOPS * PERIOD_STEPS:
        return NOTHING_INFORMED
    theirs, steady = _grid_difference(copy, first, lag, frames, length=length,
                                      sample_rate=master_rate)
    ours, _ = _grid_difference(master, first, 0, frames, length=length,
                                 sample_rate=master_rate)
    cells = whitened(theirs - ours, steady, highpass=False)
    offset = (first // STEP_HOPS) % PERIOD_STEPS
    decoded = decode(key, soft_values(cells, layout, offset))
    return ExtractResult(decoded.check_ok, decoded.payload, decoded.bit_errors, decoded.score,
                         informed=True, offset_seconds=(first * hop - lag) / master_rate / speed,
                         speed=speed)


def extract(samples: NDArray[np.generic], sample_rate: int, key: bytes,
            reference: NDArray[np.generic] | None = None, reference_rate: int | None = None
            ) -> ExtractResult:
    """Read the mark from ``samples`` (any excerpt of a marked copy, at any rate the
    decoder gives); with ``reference`` (the master's samples, at ``reference_rate``,
    default ``sample_rate``), an informed read."""
    raw = validate_key(key)
    audio = as_float(samples, sample_rate, purpose="read", min_seconds=MIN_READ_SECONDS)
    mono = audio.mean(axis=1)
    if reference is None:
        return _blind(mono, int(sample_rate), raw)
    rate = int(reference_rate or sample_rate)
    master = as_float(reference, rate, purpose="read").mean(axis=1)
    return _informed(mono, int(sample_rate), master, rate, raw)
