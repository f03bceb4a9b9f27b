"""Audio mark benchmark: issue 17's attack table on real recordings and generated clips.

Run it with `.venv/bin/python benchmarks/audio/run.py` (five keys per clip; `--quick`: two
clips, one key; `--write`: also put the result in docs/BENCHMARKS.md, section "Audio
mark"); about ten minutes here. It fetches its real recordings with `pip download
--no-deps` into benchmarks/.work/ (git-ignored). The corpus, with each clip's source,
licence and length, is in benchmarks/audio/corpus.py: five real recordings (Kevin
MacLeod's "Vibe Ace" from librosa 0.7.2, two pieces by Anttis from arcade 3.3.3, the
two-speaker conversation pyannote.audio 3.3.2 ships, a medley of pyo 1.1.0's recordings:
electronic music, flute, spoken French, drums, piano) and four generated clips
(tests/watermark/audio_clips.py: two music, two speech-like), 30 to 60 s, 44.1 kHz stereo.

For every clip and several random keys, each with its own random 64-bit payload:
`watermark.audio.embed`, every attack of the issue's table (benchmarks/audio/attacks.py),
a blind `watermark.audio.extract`, and a trial counts only if the exact payload comes
back. A read that names another payload is counted apart (a false accusation). False
positives: the unmarked clip read under each key, and the marked copy read under a key
that did not mark it. Quality: SNR of every channel against the original (mean and
minimum over clips and keys), and segmental SNR (46 ms frames, frames below -60 dBFS left
out, each frame's SNR limited to -10..35 dB, the usual definition). Speed, one thread
(OMP/OpenBLAS/MKL threads set to 1 before numpy loads): seconds of embed and of a blind
read of the whole marked clip per minute of audio, median and range over every clip and
key. audiowmark's figures are quoted from issue 17's Anchor section (measured there, not
run here: it is not packaged for Debian 12 or the package index).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import soundfile
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.audio.attacks import ATTACKS, RATE
from benchmarks.audio.corpus import Clip, corpus
from benchmarks.common import write_section
from watermark.audio import embed, extract

SEGMENT = 2048
SILENT_DBFS = -60.0


def snr_db(original: NDArray[np.floating], copy: NDArray[np.floating]) -> float:
    a, b = original.astype(np.float64), copy.astype(np.float64)
    return float(10 * np.log10(np.sum(a**2) / np.sum((b - a) ** 2)))


def segmental_snr_db(original: NDArray[np.floating], copy: NDArray[np.floating]
                     ) -> tuple[float, float]:
    """Segmental SNR of one channel, and the 5th percentile of its frames' SNR."""
    frames = original.size // SEGMENT
    a = original[: frames * SEGMENT].astype(np.float64).reshape(frames, SEGMENT)
    b = copy[: frames * SEGMENT].astype(np.float64).reshape(frames, SEGMENT)
    signal = np.mean(a**2, axis=1)
    error = np.mean((b - a) ** 2, axis=1)
    audible = signal > 10 ** (SILENT_DBFS / 10)
    per_frame = 10 * np.log10(signal[audible] / np.maximum(error[audible], 1e-30))
    return (float(np.mean(np.clip(per_frame, -10, 35))),
            float(np.percentile(per_frame, 5)))


@dataclass
class Tally:
    hits: dict[str, int] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=dict)
    wrong: int = 0
    misses: dict[str, list[str]] = field(default_factory=dict)

    def count(self, row: str, ok: bool, clip: str) -> None:
        self.hits[row] = self.hits.get(row, 0) + int(ok)
        self.trials[row] = self.trials.get(row, 0) + 1
        if not ok:
            self.misses.setdefault(row, []).append(clip)

    def cell(self, row: str) -> str:
        hits, trials = self.hits.get(row, 0), self.trials.get(row, 0)
        return f"{100 * hits / trials:.0f}% ({hits}/{trials})" if trials else "-"


@dataclass
class ClipResult:
    clip: Clip
    snr: list[float] = field(default_factory=list)  # every channel of every key
    segmental: list[float] = field(default_factory=list)
    low_frames: list[float] = field(default_factory=list)
    unattacked: int = 0
    keys: int = 0


@dataclass
class Run:
    everything: Tally = field(default_factory=Tally)
    real: Tally = field(default_factory=Tally)
    clips: list[ClipResult] = field(default_factory=list)
    embed_per_minute: list[float] = field(default_factory=list)
    read_per_minute: list[float] = field(default_factory=list)
    unmarked_read_per_minute: list[float] = field(default_factory=list)
    false_positives: int = 0
    false_positive_reads: int = 0
    refused: list[str] = field(default_factory=list)


def timed(function, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - start


def run_clip(run: Run, clip: Clip, keys: int, rng: np.random.Generator) -> None:
    result = ClipResult(clip, keys=keys)
    run.clips.append(result)
    minutes = clip.seconds / 60
    for _ in range(keys):
        key = rng.bytes(16)
        payload = int.from_bytes(rng.bytes(8), "big")
        try:
            marked, seconds = timed(embed, clip.samples, RATE, key, payload)
        except Exception as error:  # noqa: BLE001 - a refusal is a result, counted below
            run.refused.append(f"{clip.name}: {error}")
            for row in ATTACKS:
                for tally in (run.everything, run.real) if clip.kind == "real" else (
                        run.everything,):
                    tally.count(row, False, clip.name)
            continue
        run.embed_per_minute.append(seconds / minutes)
        for channel in range(2):
            result.snr.append(snr_db(clip.samples[:, channel], marked[:, channel]))
            segmental, low = segmental_snr_db(clip.samples[:, channel], marked[:, channel])
            result.segmental.append(segmental)
            result.low_frames.append(low)
        for row, (attack, _target, _reference) in ATTACKS.items():
            copy, rate = attack(marked, rng)
            read, seconds = timed(extract, copy, rate, key)
            if row == "none":
                run.read_per_minute.append(seconds / minutes)
                result.unattacked += int(read.payload == payload)
            ok = read.found and read.payload == payload
            run.everything.wrong += int(read.found and read.payload != payload)
            for tally in (run.everything, run.real) if clip.kind == "real" else (
                    run.everything,):
                tally.count(row, ok, clip.name)
        unmarked, seconds = timed(extract, clip.samples, RATE, key)
        run.unmarked_read_per_minute.append(seconds / minutes)
        other = extract(marked, RATE, rng.bytes(16))
        run.false_positives += int(unmarked.found) + int(other.found)
        run.false_positive_reads += 2
        print(f"  {clip.name}: key done", file=sys.stderr, flush=True)


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")


def report(run: Run, *, started: str, loads: tuple[str, str], command: str,
           keys: int, wall_minutes: float) -> str:
    clips = [result.clip for result in run.clips]
    real = [clip for clip in clips if clip.kind == "real"]
    snrs = [snr for result in run.clips for snr in result.snr]
    segmentals = [value for result in run.clips for value in result.segmental]
    lines = [
        f"Run with `{command}` ({len(clips)} clips, {keys} random "
        f"key{'s' if keys > 1 else ''} each, each key with its own random 64-bit payload; "
        "every trial one embed, one attack, one blind read).",
        f"Machine: {os.cpu_count()} x {_cpu()} (shared with other work), one thread; "
        f"Python {platform.python_version()}, numpy {np.__version__}, soundfile "
        f"{soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__}), lameenc "
        f"1.9.0, PyAV {av.__version__}; {started}. Load average before: {loads[0]}; after: "
        f"{loads[1]}; {wall_minutes:.0f} minutes in all.",
        "",
        f"Corpus: {len(real)} real recordings ("
        + ", ".join(f"{clip.name} {clip.seconds:.0f} s" for clip in real)
        + ") and " + str(len(clips) - len(real)) + " generated clips ("
        + ", ".join(f"{clip.name} {clip.seconds:.0f} s" for clip in clips
                    if clip.kind != "real")
        + "), 44.1 kHz stereo; sources and licences in benchmarks/audio/corpus.py. "
        "audiowmark's column is quoted from issue 17's Anchor section (8 clips on this "
        "machine, 128-bit payload), not run here.",
        "",
        "| attack (blind read, exact 64-bit payload) | target | ours, all clips | ours, real "
        "recordings only | audiowmark (issue 17, not run) |",
        "|---|---|---|---|---|",
    ]
    for row, (_attack, target, reference) in ATTACKS.items():
        lines.append(f"| {row} | {target:g}% | {run.everything.cell(row)} | "
                     f"{run.real.cell(row)} | {reference} |")
    lines += [
        f"| unmarked clip, or marked copy under another key: read as marked | <= 0.01% | "
        f"{100 * run.false_positives / max(run.false_positive_reads, 1):.0f}% "
        f"({run.false_positives}/{run.false_positive_reads}) | | raw output proposes "
        "patterns; only a keyed check outside it rejects them |",
        f"| attacked copy read as another payload | 0 | {run.everything.wrong} | | - |",
        f"| SNR per channel, dB (mean / min) | >= 30 on every clip | "
        f"{statistics.mean(snrs):.1f} / {min(snrs):.1f} | "
        + _real_snr(run) + " | 32 / 27.6 |",
        f"| segmental SNR, dB (mean / min over clips, channels, keys) | reported | "
        f"{statistics.mean(segmentals):.1f} / {min(segmentals):.1f} | | - |",
        f"| embed, s per minute of stereo audio (median, range) | <= 0.5 | "
        f"{spread(run.embed_per_minute)} | | 0.34 |",
        f"| blind read of a marked copy, s per minute (median, range) | <= 2 | "
        f"{spread(run.read_per_minute)} | | 21 with its speed search, 6 without |",
        f"| blind read of an unmarked clip, s per minute (median, range) | - | "
        f"{spread(run.unmarked_read_per_minute)} | | - |",
        f"| copies refused by embed's self-check | 0 | {len(run.refused)} | | - |",
        "",
    ]
    missed = [row for row, (_a, target, _r) in ATTACKS.items()
              if run.everything.trials.get(row)
              and 100 * run.everything.hits.get(row, 0) / run.everything.trials[row] < target]
    if missed:
        lines.append("Rows under their target: " + "; ".join(
            f"{row} ({run.everything.cell(row)} against {ATTACKS[row][1]:g}%)"
            for row in missed) + ".")
    else:
        lines.append("Every robustness row meets its target on this corpus.")
    if run.everything.misses:
        lines += ["", "Misses (attack: clip x failed trials):", ""]
        lines += [f"- {row}: " + ", ".join(f"{name} x{names.count(name)}"
                                           for name in dict.fromkeys(names))
                  for row, names in run.everything.misses.items()]
    if run.refused:
        lines += ["", "Refused by embed: " + "; ".join(run.refused)]
    lines += [
        "",
        "Each clip on its own:",
        "",
        "| clip | kind | length | SNR, dB (min over channels and keys) | segmental SNR, dB (mean) "
        "| frame SNR, 5th percentile, dB | read back unattacked | weakest row |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in run.clips:
        lines.append(
            f"| {result.clip.name} | {result.clip.kind} | {result.clip.seconds:.1f} s | "
            f"{min(result.snr, default=float('nan')):.1f} | "
            f"{statistics.mean(result.segmental) if result.segmental else float('nan'):.1f} | "
            f"{min(result.low_frames, default=float('nan')):.1f} | "
            f"{result.unattacked}/{result.keys} | {_weakest(run, result)} |")
    return "\n".join(lines) + "\n"


def _real_snr(run: Run) -> str:
    snrs = [snr for result in run.clips if result.clip.kind == "real" for snr in result.snr]
    return f"{statistics.mean(snrs):.1f} / {min(snrs):.1f}" if snrs else "-"


def _weakest(run: Run, result: ClipResult) -> str:
    failed = {row: names.count(result.clip.name)
              for row, names in run.everything.misses.items() if result.clip.name in names}
    if not failed:
        return f"none: every row {result.keys}/{result.keys}"
    row = max(failed, key=lambda name: failed[name])
    return f"{row}: {result.keys - failed[row]}/{result.keys}"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two clips, one key")
    parser.add_argument("--keys", type=int, default=None, help="keys per clip (default 5)")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--write", action="store_true",
                        help='write the result into docs/BENCHMARKS.md ("Audio mark")')
    args = parser.parse_args()
    keys = args.keys or (1 if args.quick else 5)
    command = ".venv/bin/python benchmarks/audio/run.py" + (" --quick" if args.quick else "")
    if args.keys:
        command += f" --keys {args.keys}"
    started = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()
    begin = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    run = Run()
    for clip in corpus(quick=args.quick):
        print(f"{clip.name} ({clip.seconds:.1f} s)", file=sys.stderr, flush=True)
        run_clip(run, clip, keys, rng)
    body = report(run, started=started, loads=(load_before, _load()), command=command,
                  keys=keys, wall_minutes=(time.perf_counter() - begin) / 60)
    print(body)
    if args.write:
        write_section("Audio mark", body)


if __name__ == "__main__":
    main()
