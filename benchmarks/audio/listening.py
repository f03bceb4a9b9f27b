"""Listening material for the audio mark: the clips, their marked copies and what the mark
added, as WAV files to play and spectrograms to look at, and the figures that say where
the added sound sits against the music that should mask it.

    .venv/bin/python benchmarks/audio/listening.py [--quick]

Writes benchmarks/.work/listening/ (git-ignored): for each clip of the benchmark's corpus,
``<clip>.original.wav``, ``<clip>.marked.wav`` and ``<clip>.added+20dB.wav`` (marked minus
original, 20 dB louder so that it can be heard at all), and ``<clip>.png``: three
spectrograms on one dB scale (original, added, and added minus original per tile: how far
below the music the mark sits, where the music could mask it). It prints a table per clip:
SNR, segmental SNR, the mark's level against the music's in each critical band of the
marked range (median, 95th percentile and worst frame), the added sound in quiet
passages, and before note onsets (pre-echo).

docs/WATERMARK.md ("How audibility was judged") says how these were used.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import NDArray
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.audio.corpus import RATE, WORK, corpus
from watermark.audio import embed

OUT = WORK.parent / "listening"
KEY = bytes(range(32))
PAYLOAD = 0x0123_4567_89AB_CDEF
FRAME = 2048
HOP = 512
FLOOR_DB = -110.0
Floats = NDArray[np.float64]


def spectrogram_db(mono: Floats) -> Floats:
    """Power per (frame, bin) in dB full scale, Hann-windowed frames of 46 ms."""
    frames = 1 + (mono.size - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(frames)[:, None]
    window = np.hanning(FRAME)
    power = np.abs(np.fft.rfft(mono[index] * window, axis=1)) ** 2 / np.square(window).sum()
    return np.asarray(10 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10))), np.float64)


#: the critical bands (Zwicker) that the marked range, 300 Hz to 7 kHz, covers: masking
#: works across a critical band, so the mark is compared with the music band by band
BARK_EDGES_HZ = (300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000, 2320, 2700,
                 3150, 3700, 4400, 5300, 6400, 7000)


def band_margin_db(original_db: Floats, added_db: Floats) -> Floats:
    """Per frame and critical band, the mark's power minus the music's, in dB; only the
    (frame, band) pairs where the music is above -70 dBFS in that band."""
    width = RATE / FRAME
    out = []
    for low, high in itertools.pairwise(BARK_EDGES_HZ):
        bins = slice(int(np.ceil(low / width)), int(np.ceil(high / width)))
        music = 10 * np.log10(np.sum(10 ** (original_db[:, bins] / 10), axis=1))
        mark = 10 * np.log10(np.sum(10 ** (added_db[:, bins] / 10), axis=1))
        out.append((mark - music)[music > -70])
    return np.concatenate(out)


def segmental_snr_db(original: Floats, added: Floats, *, seconds: float = 0.02) -> float:
    """Mean over 20 ms segments of each segment's SNR, clamped to [-10, 35] dB as usual,
    over segments that are not silent (above -60 dBFS)."""
    size = int(seconds * RATE)
    count = original.size // size
    signal = np.square(original[: count * size]).reshape(count, size).sum(1)
    noise = np.square(added[: count * size]).reshape(count, size).sum(1)
    loud = signal / size > 1e-6
    ratio = 10 * np.log10(np.maximum(signal[loud], 1e-30) / np.maximum(noise[loud], 1e-30))
    return float(np.clip(ratio, -10, 35).mean())


def colour(db: Floats, low: float, high: float) -> NDArray[np.uint8]:
    """A dB image in a dark-to-bright ramp (black, purple, orange, yellow)."""
    t = np.clip((db - low) / (high - low), 0, 1)
    stops = np.array([[0, 0, 0], [80, 20, 120], [230, 90, 30], [255, 240, 120]], float)
    position = t * (len(stops) - 1)
    lower = np.minimum(position.astype(int), len(stops) - 2)
    fraction = (position - lower)[..., None]
    rgb = stops[lower] * (1 - fraction) + stops[lower + 1] * fraction
    return rgb.astype(np.uint8)


def picture(original_db: Floats, added_db: Floats, path: Path) -> None:
    """Three panels, time left to right, 0-11 kHz bottom to top."""
    top = int(11_000 / (RATE / FRAME))
    margin = np.clip(added_db - original_db, -60, 0)
    panels = [colour(original_db[:, :top], -100, -20), colour(added_db[:, :top], -100, -20),
              colour(margin[:, :top], -60, 0)]
    rows = [np.flipud(panel.transpose(1, 0, 2)) for panel in panels]
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    Image.fromarray(np.concatenate([rows[0], gap, rows[1], gap, rows[2]])).save(path)


def report(name: str, original: Floats, marked: Floats) -> dict[str, float]:
    mono_o, mono_m = original.mean(1), marked.mean(1)
    added = mono_m - mono_o
    o_db, a_db = spectrogram_db(mono_o), spectrogram_db(added)
    picture(o_db, a_db, OUT / f"{name}.png")
    margin = band_margin_db(o_db, a_db)
    frame_level = 10 * np.log10(np.maximum(
        np.square(mono_o[: (mono_o.size // HOP) * HOP]).reshape(-1, HOP).mean(1), 1e-30))
    added_level = 10 * np.log10(np.maximum(
        np.square(added[: (added.size // HOP) * HOP]).reshape(-1, HOP).mean(1), 1e-30))
    quiet = frame_level < -50
    onsets = np.flatnonzero(np.diff(frame_level) > 12) + 1
    before = onsets[onsets >= 4] - 2  # 23 ms before the loud block starts
    noise = float(np.square(marked - original).sum())
    return {
        "snr": 10 * np.log10(float(np.square(original).sum()) / max(noise, 1e-30)),
        "segsnr": segmental_snr_db(mono_o, added),
        "margin_median": float(np.median(margin)),
        "margin_p95": float(np.percentile(margin, 95)),
        "margin_max": float(margin.max()),
        "quiet_share": float(quiet.mean()),
        "quiet_added_db": float(added_level[quiet].max()) if quiet.any() else float("nan"),
        "pre_echo_db": float(np.median(added_level[before] - frame_level[before]))
        if before.size else float("nan"),
        "onsets": float(before.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two clips only")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print("| clip | SNR dB | segmental SNR dB | mark vs music per critical band, median dB "
          "| p95 dB | max dB | quiet share | loudest mark in quiet, dBFS "
          "| mark vs signal before onsets, dB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for clip in corpus(quick=args.quick):
        original = clip.samples.astype(np.float64)
        marked = np.asarray(embed(clip.samples, RATE, KEY, PAYLOAD), np.float64)
        soundfile.write(OUT / f"{clip.name}.original.wav", original, RATE, subtype="PCM_16")
        soundfile.write(OUT / f"{clip.name}.marked.wav", marked, RATE, subtype="PCM_16")
        soundfile.write(OUT / f"{clip.name}.added+20dB.wav",
                        np.clip((marked - original) * 10, -1, 1), RATE, subtype="PCM_16")
        r = report(clip.name, original, marked)
        print(f"| {clip.name} | {r['snr']:.1f} | {r['segsnr']:.1f} "
              f"| {r['margin_median']:.1f} | {r['margin_p95']:.1f} | {r['margin_max']:.1f} "
              f"| {r['quiet_share']:.0%} | {r['quiet_added_db']:.1f} "
              f"| {r['pre_echo_db']:.1f} ({r['onsets']:.0f} onsets) |")
    print(f"\nFiles in {OUT}")


if __name__ == "__main__":
    main()
