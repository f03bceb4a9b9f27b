"""Reading the audio mark: blind from the suspect alone, or informed with the master.

Blind: one analysis of the copy at a quarter-hop (float32 spectra, summed only up to the
highest band), then for each speed within +-2% (0.25% apart) and each of the eight
quarter-hop phases of a two-hop step, the cells are read off it and correlated with the
keyed sync pattern at every offset into the period at once (`sync_scores`; a speed's
phases are read together, as one array). That is 136 cheap reads, not 136 analyses, and
finds an excerpt's place and a speed change (pitch moving with it) without a brute-force
decode. The best three placements are decoded, each with its cells weighted by the mark
that its own sync cells show (`class_weighted`); the keyed check decides, so a copy
without this key's mark reads as "no mark" (three tries at 2**-24 each: below 2e-7 per
read).

Informed (the tracer's case): the copy is placed against the master by cross-correlating
their waveforms (the master's spectrum computed once for every speed tried), the
master's cells are subtracted, and what remains is the mark and the attack's noise, with
no music left in it.
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
from watermark.audio.samples import as_channels, mixdown
from watermark.audio.spectrum import (
    band_split,
    band_top,
    frame_length,
    half_band_power,
    power_prefix,
)
from watermark.audio.statistic import (
    above_floor,
    class_weighted,
    level_above_floor_db,
    read_difference,
    read_powers,
    read_steps,
    residual_cells,
    soft_values,
    step_difference,
    sync_scores,
    whitened,
)
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
"""A sync peak this high (in noise standard deviations, over 136 placements x 150 offsets)
is not chance: an informed read takes its speed instead of trying them all."""
MIN_READ_SECONDS = 7.5
"""A read needs a whole period (7.0 s) and its frames' edges."""


@dataclass(frozen=True)
class _Placement:
    score: float
    speed: float
    phase: int
    offset: int


@dataclass(frozen=True)
class _Analysis:
    """A copy's one fine analysis: every quarter-hop frame's running power sum over
    frequency, which frames lie wholly inside the copy, the frame length and the rate."""

    prefix: Floats
    inside: NDArray[np.bool_]
    length: int
    sample_rate: int

    def half_bands(self, speed: float) -> tuple[Floats, Floats]:
        """Every frame's half-band powers, the bands stretched to ``speed``."""
        return half_band_power(self.prefix, band_split(self.length, self.sample_rate, speed))

    def powers(self, halves: tuple[Floats, Floats], speed: float, phases: NDArray[np.intp]
               ) -> tuple[Floats, Floats, NDArray[np.bool_]]:
        """The steps' half-band powers read at ``speed`` from ``phases`` (`read_powers`),
        from that speed's ``halves``."""
        return read_powers(*halves, self.inside, per_hop=PER_HOP, speed=speed, phases=phases)


def _speeds() -> Floats:
    return np.asarray(1.0 + np.arange(-SPEED_STEPS, SPEED_STEPS + 1) * SPEED_STEP, np.float64)


def _fine_analysis(mono: Floats, sample_rate: int) -> _Analysis:
    length = frame_length(sample_rate)
    fine = length // (2 * PER_HOP)
    starts = np.arange(max(0, (mono.size - length) // fine + 1)) * fine
    fastest = float(_speeds()[-1])
    prefix, inside = power_prefix(mono, starts, length,
                                  bins=band_top(length, sample_rate, fastest), single=True)
    return _Analysis(prefix, inside, length, sample_rate)


def _placements(analysis: _Analysis, layout: AudioLayout) -> list[_Placement]:
    """Every speed and phase's best offset, best first. The cells are the interpolation
    residual, variance-weighted, each counted by its level above its band's floor: before
    the placement is known, nothing better says which cells carry the mark."""
    frames = analysis.prefix.shape[0]
    found = []
    for speed in _speeds():
        halves = analysis.half_bands(float(speed))
        by_steps: dict[int, list[int]] = {}
        for phase in range(PER_HOP * STEP_HOPS):
            steps = read_steps(frames, per_hop=PER_HOP, speed=float(speed), phase=phase)
            by_steps.setdefault(steps, []).append(phase)
        for steps, phases in by_steps.items():
            if steps < PERIOD_STEPS:
                continue
            low, high, steady = analysis.powers(halves, float(speed),
                                                np.asarray(phases, np.intp))
            cells = (residual_cells(step_difference(low, high), steady)
                     * above_floor(low + high))
            scores = sync_scores(cells, layout)
            for index, phase in enumerate(phases):
                offset = int(np.argmax(scores[index]))
                found.append(_Placement(float(scores[index, offset]), float(speed), phase,
                                        offset))
    found.sort(key=lambda placement: -placement.score)
    return found


def _decoding_cells(analysis: _Analysis, placement: _Placement, layout: AudioLayout
                    ) -> Floats:
    """The cells at ``placement``, each weighted by the mark its class shows on the sync
    cells there (`class_weighted`)."""
    low, high, steady = analysis.powers(analysis.half_bands(placement.speed), placement.speed,
                                        np.asarray([placement.phase]))
    cells = residual_cells(step_difference(low[0], high[0]), steady[0], standardised=True)
    return class_weighted(cells, level_above_floor_db(low[0] + high[0]), steady[0], layout,
                          placement.offset)


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
    analysis = _fine_analysis(mono, sample_rate)
    placements = _placements(analysis, layout)
    if not placements:
        return NOTHING
    best: ExtractResult | None = None
    for placement in placements[:TRIES]:
        cells = _decoding_cells(analysis, placement, layout)
        result = _result(soft_values(cells, layout, placement.offset), key, placement,
                         sample_rate, informed=False)
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


def _fast_size(minimum: int) -> int:
    """The smallest length at least ``minimum`` with no prime factor above 5 (quick FFTs)."""
    best = 1 << max(0, (minimum - 1).bit_length())
    threes = 1
    while threes < best:
        product = threes
        while product < best:
            size = product * (1 << max(0, (-(-minimum // product) - 1).bit_length()))
            best = min(best, size)
            product *= 5
        threes *= 3
    return best


class _Master:
    """The master's waveform and its spectrum for the cross-correlation, computed once for
    every speed tried."""

    def __init__(self, samples: Floats) -> None:
        self.samples = samples
        self.size = _fast_size(samples.size)
        self.spectrum = np.fft.rfft(samples, self.size)


def _lag(copy: Floats, master: _Master) -> tuple[int, float]:
    """Where in the master the copy starts, to the sample, and how well it fits there
    (normalised cross-correlation of the waveforms, by FFT: a transform as long as the
    master suffices, since only placements wholly inside it are wanted)."""
    product = master.spectrum * np.conj(np.fft.rfft(copy, master.size))
    correlation = np.fft.irfft(product, master.size)[: master.samples.size - copy.size + 1]
    lag = int(np.argmax(correlation))
    energy = float(np.sqrt(np.square(copy).sum()
                           * np.square(master.samples[lag: lag + copy.size]).sum()))
    return lag, float(correlation[lag]) / max(energy, 1e-30)


def _grid_difference(signal: Floats, first_frame: int, start: int, frames: int, *,
                     length: int, sample_rate: int) -> tuple[Floats, NDArray[np.bool_]]:
    """Cells of ``signal`` (which begins at master sample ``start``) on the master's hop
    grid, from hop ``first_frame``."""
    hop = length // 2
    starts = (first_frame + np.arange(frames)) * hop - start
    split = band_split(length, sample_rate)
    prefix, inside = power_prefix(signal, starts.astype(np.intp), length,
                                  bins=int(split[-1, 2]))
    low, high = half_band_power(prefix, split)
    difference, steady, _level = read_difference(low, high, inside, per_hop=1, speed=1.0,
                                                 phases=np.zeros(1, np.intp))
    return difference[0], steady[0]


CODEC_SLACK_SECONDS = 0.25
"""How far a whole copy may start before its master or end after it: several MP3
encodings' priming and padding (about 1,600 samples each), with room to spare."""


def _informed(mono: Floats, sample_rate: int, master: Floats, master_rate: int,
              key: bytes) -> ExtractResult:
    """Register the copy onto the master (speed from the blind sync where it is sure,
    else the best-fitting speed; start by waveform correlation), subtract the master's
    cells and read what is left."""
    layout = audio_layout(key)
    placements = _placements(_fine_analysis(mono, sample_rate), layout)
    if placements and placements[0].score >= TRUSTED_SYNC:
        speeds = [placements[0].speed]
    else:
        speeds = [float(speed) for speed in _speeds()]
    fits = []
    whole = _Master(master)
    length = frame_length(master_rate)
    hop = length // 2
    slack = round(CODEC_SLACK_SECONDS * master_rate)
    needed = STEP_HOPS * PERIOD_STEPS * hop + length
    for speed in speeds:
        copy = _on_master_timeline(mono, sample_rate, master_rate, speed)
        # A codec's delay can put a whole copy's first samples before the master's
        # (an MP3 decoder gives its priming first) and its last after them (padding):
        # the copy's edges are left out, so that it lies wholly inside the master.
        trim = slack if copy.size - 2 * slack >= needed else 0
        copy = copy[trim: min(copy.size - trim, trim + master.size)]
        lag, fit = _lag(copy, whole)
        fits.append((fit, speed, lag, copy, trim))
    if not fits:
        return NOTHING_INFORMED
    _fit, speed, lag, copy, trim = max(fits, key=lambda found: found[0])
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
                         informed=True,
                         offset_seconds=(first * hop - lag + trim) / master_rate / speed,
                         speed=speed)


def extract(samples: NDArray[np.generic], sample_rate: int, key: bytes,
            reference: NDArray[np.generic] | None = None, reference_rate: int | None = None
            ) -> ExtractResult:
    """Read the mark from ``samples`` (any excerpt of a marked copy, at any rate the
    decoder gives); with ``reference`` (the master's samples, at ``reference_rate``,
    default ``sample_rate``), an informed read."""
    raw = validate_key(key)
    mono = mixdown(as_channels(samples, sample_rate, purpose="read",
                               min_seconds=MIN_READ_SECONDS))
    if reference is None:
        return _blind(mono, int(sample_rate), raw)
    rate = int(reference_rate or sample_rate)
    master = mixdown(as_channels(reference, rate, purpose="read"))
    return _informed(mono, int(sample_rate), master, rate, raw)
