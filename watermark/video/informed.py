"""The informed read: the tracer has the master, so crops and scaling are undone and the
master's own picture is subtracted before the mark is read.

1. **When.** A copy may be an excerpt, or retimed. Every analysed frame of the copy and
   every frame of the master gets a signature, the mean luma of its central half (a crop
   to 90% keeps most of it); the time offset that best correlates the two series is the
   copy's place in the master (none if the copy's series is flat: offset 0).
2. **Where.** The copy's most detailed analysed frame and the master's frame at the same
   time are registered (`watermark.register`: Fourier-Mellin, then Lucas-Kanade), giving
   the affine map from the master's pixels to the copy's.
3. **Read.** Each analysed frame of the copy is resampled into the master's canonical
   picture (`frames.to_canonical`); the master's frame at that time, on the canonical
   picture, is subtracted with a fitted gain and offset, leaving the mark and the
   attacks' noise. Cells the copy does not cover get no weight. The per-cell detector
   contributions, weighted by the amplitude the embedder gave each cell (the master's
   mask) over the residual's local variance, are summed over frames and decoded once.
   If that fails, the registered frames are read without subtraction (as a blind read on
   the master's grid), which a mistimed subtraction cannot spoil.

Two decode attempts at most; see `extract` for the false-positive bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark import grid
from watermark.detect import chip_gain
from watermark.errors import CorruptVideoError, WatermarkError
from watermark.mask import amplitude
from watermark.pattern import Layout
from watermark.payload import CODED_BITS, decode
from watermark.register import Alignment, coverage, register
from watermark.result import ExtractResult
from watermark.video import frames, probe
from watermark.video.extract import READ_FRAMES, luma_of, read_picture, sampled_frames

Plane = NDArray[np.float32]
MIN_CORRELATION: Final = 0.3
"""A registration whose aligned frames correlate less than this is not trusted: the read
falls back to the blind one."""


def _signature(luma: Plane) -> float:
    h, w = luma.shape
    return float(luma[h // 4 : h - h // 4 : 2, w // 4 : w - w // 4 : 2].mean())


@dataclass
class _MasterSeries:
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    shape: tuple[int, int] = (0, 0)


def _master_frames(data: bytes) -> Iterator[tuple[float, Plane]]:
    """(time, luma) of every frame of the master, up to the length its container states
    (`probe.LengthGuard`: `VideoTooLargeError` past it)."""
    import av

    with probe.open_input(data) as container:
        if not container.streams.video:
            raise CorruptVideoError("the master has no video stream")
        video = container.streams.video[0]
        video.codec_context.thread_count = 2
        video.codec_context.thread_type = "AUTO"
        guard = probe.LengthGuard.of_stream(container, video)
        first: float | None = None
        try:
            for index, frame in enumerate(container.decode(video)):
                time = float(frame.time) if frame.time is not None else index / 30.0
                first = time if first is None else first
                guard.check(index + 1, time - first)
                yield time, luma_of(frame)
        except WatermarkError:
            raise
        except (av.FFmpegError, ValueError, OSError) as error:
            raise CorruptVideoError(f"the master does not decode: {error}") from error


def _master_series(data: bytes) -> _MasterSeries:
    series = _MasterSeries()
    for time, luma in _master_frames(data):
        series.times.append(time)
        series.values.append(_signature(luma))
        series.shape = (luma.shape[0], luma.shape[1])
    if not series.times:
        raise CorruptVideoError("no frame of the master decodes")
    return series


def time_offset(copy_times: list[float], copy_values: list[float],
                master: _MasterSeries) -> float:
    """Seconds to add to the copy's timestamps to land on the master's."""
    values = np.asarray(copy_values, np.float64)
    if values.size < 3 or float(values.std()) < 0.5 or len(master.times) < 3:
        return 0.0
    times = np.asarray(copy_times, np.float64)
    m_times = np.asarray(master.times, np.float64)
    m_values = np.asarray(master.values, np.float64)
    step = max(1e-3, float(np.median(np.diff(m_times))))
    low = m_times[0] - times[0]
    high = m_times[-1] - times[-1]
    if high < low:
        return 0.0
    offsets = np.arange(low, high + step / 2, step)
    centred = values - values.mean()
    best, best_score = 0.0, -math.inf
    for start in range(0, offsets.size, 512):
        chunk = offsets[start : start + 512]
        sampled = np.interp(times[None, :] + chunk[:, None], m_times, m_values)
        sampled -= sampled.mean(axis=1, keepdims=True)
        norms = np.sqrt((sampled**2).sum(axis=1) * (centred**2).sum()) + 1e-9
        scores = (sampled @ centred) / norms - 1e-6 * np.abs(chunk)
        index = int(np.argmax(scores))
        if scores[index] > best_score:
            best, best_score = float(chunk[index]), float(scores[index])
    return best


def _master_frame_at(data: bytes, target: float) -> Plane:
    best: tuple[float, Plane] | None = None
    for time, luma in _master_frames(data):
        if best is None or abs(time - target) < abs(best[0] - target):
            best = (time, luma)
        if time > target + 1.0:
            break
    if best is None:
        raise CorruptVideoError("no frame of the master decodes")
    return best[1]


@dataclass
class _Subtracted:
    """Per-bit sums of the master-subtracted statistic (like `frames.Evidence`)."""

    layout: Layout
    cell: int
    values: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))
    noise: NDArray[np.float64] = field(default_factory=lambda: np.zeros(CODED_BITS))

    def add(self, copy: Plane, master: Plane, cover: NDArray[np.bool_]) -> None:
        params = frames.params_for(self.cell)
        inside = np.kron(cover, np.ones((self.cell, self.cell), bool))
        body = np.zeros(master.shape, bool)
        body[: inside.shape[0], : inside.shape[1]] = inside
        if not bool(body.any()):
            return
        gain, offset = _fit(master[body], copy[body])
        residual = np.where(body, copy - (gain * master + offset), 0.0).astype(np.float32)
        cells = grid.high_pass(grid.cell_weighted_sums(residual, self.cell))
        amp = amplitude(master, params)
        floor = np.float32(chip_gain(params) * params.read_noise**2)
        variance = grid.box_mean(np.square(cells), 2) + floor
        weighted = np.where(cover, amp / variance * cells, 0.0)
        self.values += self.layout.per_bit(weighted * self.layout.chip)
        self.noise += self.layout.per_bit(np.square(weighted))

    def soft(self) -> NDArray[np.float64]:
        return np.asarray(self.values / np.sqrt(np.maximum(self.noise, 1e-12)), np.float64)


def _fit(master: Plane, copy: Plane) -> tuple[float, float]:
    x = master.astype(np.float64)
    y = copy.astype(np.float64)
    spread = float(x.var())
    if spread > 1e-6:
        gain = float(((x - x.mean()) * (y - y.mean())).mean()) / spread
        if math.isfinite(gain) and abs(gain) >= 0.05:
            return gain, float(y.mean() - gain * x.mean())
    return 1.0, float(y.mean() - x.mean())


def read_informed(data: bytes, master: bytes, key: bytes) -> ExtractResult:
    """The informed read of the copy `data` against the master's bytes (see the module)."""
    copy_times: list[float] = []
    copy_values: list[float] = []
    representative: tuple[float, float, Plane] | None = None
    for time, luma in sampled_frames(data, READ_FRAMES):
        copy_times.append(time)
        copy_values.append(_signature(luma))
        detail = float(luma[::2, ::2].std())
        if representative is None or detail > representative[0]:
            representative = (detail, time, luma)
    if representative is None:
        raise CorruptVideoError("no frame of the video decodes")
    series = _master_series(master)
    offset = time_offset(copy_times, copy_values, series)
    master_frame = _master_frame_at(master, representative[1] + offset)
    alignment = register(representative[2], master_frame)
    if alignment.correlation < MIN_CORRELATION:
        return read_picture(data, key)
    return _read_registered(data, master, key, alignment, offset=offset,
                            master_shape=series.shape)


def _read_registered(data: bytes, master: bytes, key: bytes, alignment: Alignment, *,
                     offset: float, master_shape: tuple[int, int]) -> ExtractResult:
    height, width = master_shape
    cols = frames.grid_cols(width, height)[0]
    cell = frames.embed_cell(width, height)
    matrix = np.array(alignment.matrix, np.float64).reshape(2, 3)
    subtracted: _Subtracted | None = None
    registered = frames.evidence_for(key, cols, cell)
    subtracted = _Subtracted(registered.layout, cell)
    masters = _master_frames(master)
    current: tuple[float, Plane] | None = next(masters, None)
    upcoming: tuple[float, Plane] | None = next(masters, None)
    combined: NDArray[np.float64] | None = None
    cover: NDArray[np.bool_] | None = None
    canon_shape = frames.canonical_shape(cols)
    for time, luma in sampled_frames(data, READ_FRAMES):
        if combined is None:
            combined = frames.canonical_matrix(matrix, cols, master_shape)
            cover = coverage(combined, canon_shape, (luma.shape[0], luma.shape[1]), cell, 2.0)
        assert cover is not None
        target = time + offset
        while upcoming is not None and abs(upcoming[0] - target) <= abs(
                (current[0] if current else math.inf) - target):
            current, upcoming = upcoming, next(masters, None)
        warped = frames.to_canonical(luma, combined, cols)
        registered.add(warped, cover)
        if current is not None:
            subtracted.add(warped, frames.canonical_luma(current[1], cols), cover)
    results = []
    for soft in (subtracted.soft(), registered.soft()):
        decoded = decode(key, soft)
        result = ExtractResult(decoded.check_ok, decoded.payload, decoded.bit_errors,
                               decoded.score, informed=True, alignment=alignment,
                               evidence=("picture",) if decoded.check_ok else ())
        if result.found:
            return result
        results.append(result)
    return results[0]


