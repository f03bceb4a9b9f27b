"""Video mark benchmark: the issue's attack table, quality and speed, on real material and
generated clips.

Run it with `.venv/bin/python benchmarks/video/run.py` (three keys per clip; `--quick`: two
360p clips, one key, and a short speed clip; `--keys N`; `--out FILE`: also write the
section to FILE; `--write`: into docs/BENCHMARKS.md, section "Video mark"). The clips are
built on first use and kept in benchmarks/.work/video/ (benchmarks/video/corpus.py; what
each clip is and why: tests/watermark/video_clips.py): eight clips of 12-24 s, 360p to
1080p, all 30 fps, MP4 (H.264 + AAC) and WebM (VP9 + Opus), four of them real material
(photographs under Ken Burns moves with a real recording as soundtrack, camera footage,
an animated film with its own soundtrack).

For every clip and several random keys, each with its own random 64-bit payload:
`embed_video_bytes` (timed: frames per second of the whole call, self-check included, and
the real-time factor, clip seconds per second of embedding), luma PSNR and SSIM of the
marked copy against the master (PSNR over every frame, SSIM every 5th frame), the size
change; then every attack of the table (tests/watermark/video_attacks.py) and a read:
blind (`extract_video_bytes(copy, key)`) on every row but the crop, which is informed
(`reference=` the master). A trial counts only if the read says found and gives the exact
payload; a found read with another payload is counted apart (a false accusation). False
positives: the unmarked master read under each key, and the marked copy read under a key
that did not mark it (reads that say found). For clips of 480 lines or fewer, the
"downscale to 480p" and crop rows scale to two thirds of the height instead (a downscale,
not an upscale). Speed row: a 1080p30 H.264 clip (real photographs), embedded several
times, frames per second of the whole call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_section
from benchmarks.video.corpus import SPEED, SPEED_QUICK, clip, corpus
from tests.watermark import video_attacks as attacks
from tests.watermark.video_clips import Clip
from watermark.video import embed_video_bytes, extract_video_bytes

SSIM_EVERY = 5

Attack = Callable[[bytes, Clip, np.random.Generator], bytes]


def _small_height(clip: Clip) -> int:
    """480, or two thirds of the height for clips of 480 lines or fewer."""
    return 480 if clip.height > 480 else round(clip.height * 2 / 3 / 2) * 2


def _excerpt(data: bytes, clip: Clip, rng: np.random.Generator) -> bytes:
    start = float(rng.uniform(0.5, max(0.6, clip.seconds - 10.2)))
    return attacks.excerpt(data, start, min(10.0, clip.seconds - start))


@dataclass(frozen=True)
class Row:
    name: str
    target: float  # percent of exact reads
    attack: Attack
    informed: bool = False


ROWS = [
    Row("none", 100, lambda data, _clip, _rng: data),
    Row("H.264 re-encode at half the bit rate", 99,
        lambda data, _clip, _rng: attacks.reencode_h264(data, 0.5)),
    Row("VP9 re-encode (0.75 x the bit rate)", 99,
        lambda data, _clip, _rng: attacks.reencode_vp9(data)),
    Row("downscale to 480p, re-encode", 99,
        lambda data, clip, _rng: attacks.downscale(data, _small_height(clip))),
    Row("10-s excerpt from a mid-GOP start", 99, _excerpt),
    Row("30 -> 25 fps, re-encode", 95,
        lambda data, _clip, _rng: attacks.change_fps(data, 25)),
    Row("crop 90% + 480p + re-encode (informed)", 90,
        lambda data, clip, _rng: attacks.crop_downscale(data, 0.9, _small_height(clip)),
        informed=True),
]


@dataclass
class Tally:
    hits: dict[str, int] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=dict)
    misses: dict[str, list[str]] = field(default_factory=dict)

    def count(self, row: str, ok: bool, name: str) -> None:
        self.hits[row] = self.hits.get(row, 0) + int(ok)
        self.trials[row] = self.trials.get(row, 0) + 1
        if not ok:
            self.misses.setdefault(row, []).append(name)

    def rate(self, row: str) -> float | None:
        trials = self.trials.get(row, 0)
        return 100 * self.hits.get(row, 0) / trials if trials else None

    def cell(self, row: str) -> str:
        hits, trials = self.hits.get(row, 0), self.trials.get(row, 0)
        return f"{100 * hits / trials:.0f}% ({hits}/{trials})" if trials else "-"


@dataclass
class ClipResult:
    clip: Clip
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    size_change: list[float] = field(default_factory=list)  # percent
    embed_fps: list[float] = field(default_factory=list)
    embed_cpu_fps: list[float] = field(default_factory=list)  # frames per CPU second
    realtime: list[float] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    informed_seconds: list[float] = field(default_factory=list)
    keys: int = 0
    misses: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    everything: Tally = field(default_factory=Tally)
    real: Tally = field(default_factory=Tally)
    picture: Tally = field(default_factory=Tally)  # exact reads the picture gave
    clips: list[ClipResult] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    false_positives: int = 0
    false_positive_reads: int = 0
    unmarked_found: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    speed_fps: list[float] = field(default_factory=list)
    speed_realtime: list[float] = field(default_factory=list)
    speed_cpu_fps: list[float] = field(default_factory=list)
    speed_clip: Clip | None = None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read(copy: bytes, key: bytes, reference: bytes | None, label: str,
          run: Run) -> tuple[bool, int | None, float, tuple[str, ...]]:
    """found, payload, seconds, and the carriers that gave the payload."""
    start = time.perf_counter()
    try:
        result = extract_video_bytes(copy, key, reference)
    except Exception as error:  # noqa: BLE001 - a failed read is a result, kept
        run.errors.append(f"{label}: {type(error).__name__}: {error}")
        return False, None, time.perf_counter() - start, ()
    return (result.found, result.payload, time.perf_counter() - start,
            tuple(result.evidence))


def run_clip(run: Run, clip: Clip, keys: int, rng: np.random.Generator) -> None:
    result = ClipResult(clip, keys=keys)
    run.clips.append(result)
    tallies = (run.everything, run.real) if clip.real else (run.everything,)
    frames = attacks.info(clip.data).frames
    for number in range(keys):
        key = rng.bytes(32)
        payload = int.from_bytes(rng.bytes(8), "big")
        start, cpu = time.perf_counter(), time.process_time()
        try:
            marked = embed_video_bytes(clip.data, key, payload)
        except Exception as error:  # noqa: BLE001 - a refusal is a result, counted below
            run.refused.append(f"{clip.name}: {type(error).__name__}: {error}")
            for row in ROWS:
                for tally in tallies:
                    tally.count(row.name, False, clip.name)
                result.misses[row.name] = result.misses.get(row.name, 0) + 1
            _log(f"  {clip.name} key {number + 1}: refused ({error})")
            continue
        seconds = time.perf_counter() - start
        result.embed_cpu_fps.append(frames / (time.process_time() - cpu))
        result.embed_fps.append(frames / seconds)
        result.realtime.append(clip.seconds / seconds)
        result.psnr.append(attacks.psnr(clip.data, marked))
        result.ssim.append(attacks.ssim(clip.data, marked, every=SSIM_EVERY))
        result.size_change.append(100 * (len(marked) / len(clip.data) - 1))
        outcome = []
        for row in ROWS:
            label = f"{clip.name} key {number + 1} {row.name}"
            try:
                copy = row.attack(marked, clip, rng)
            except Exception as error:  # noqa: BLE001 - the attack's own failure, shown
                run.errors.append(f"{label}: attack failed: {type(error).__name__}: {error}")
                ok = False
                run.picture.count(row.name, False, clip.name)
            else:
                found, got, took, carriers = _read(
                    copy, key, clip.data if row.informed else None, label, run)
                ok = found and got == payload
                run.picture.count(row.name, ok and "picture" in carriers, clip.name)
                if found and got != payload:
                    run.wrong.append(label)
                if row.name == "none":
                    result.read_seconds.append(took)
                if row.informed:
                    result.informed_seconds.append(took)
            for tally in tallies:
                tally.count(row.name, ok, clip.name)
            if not ok:
                result.misses[row.name] = result.misses.get(row.name, 0) + 1
            outcome.append("+" if ok else "-")
        for copy, label in ((clip.data, "unmarked master"), (marked, "marked, other key")):
            other = rng.bytes(32) if label.startswith("marked") else key
            found, _got, _took, _carriers = _read(copy, other, None, f"{clip.name} {label}",
                                                  run)
            run.false_positives += int(found)
            run.false_positive_reads += 1
            if found:
                run.unmarked_found.append(f"{clip.name} ({label})")
        _log(f"  {clip.name} key {number + 1}: embed {seconds:.1f} s "
             f"({frames / seconds:.1f} frames/s), PSNR {result.psnr[-1]:.1f} dB, "
             f"rows {''.join(outcome)}")


def run_speed(run: Run, spec: tuple[str, int, int, int, float, str, int], rounds: int,
              rng: np.random.Generator) -> None:
    speed = clip(spec)
    run.speed_clip = speed
    frames = attacks.info(speed.data).frames
    for number in range(rounds):
        key, payload = rng.bytes(32), int.from_bytes(rng.bytes(8), "big")
        start, cpu = time.perf_counter(), time.process_time()
        try:
            embed_video_bytes(speed.data, key, payload)
        except Exception as error:  # noqa: BLE001 - shown in the report
            run.refused.append(f"{speed.name} (speed row): {type(error).__name__}: {error}")
            continue
        seconds = time.perf_counter() - start
        run.speed_cpu_fps.append(frames / (time.process_time() - cpu))
        run.speed_fps.append(frames / seconds)
        run.speed_realtime.append(speed.seconds / seconds)
        _log(f"  speed round {number + 1}: {frames / seconds:.1f} frames/s, "
             f"{run.speed_cpu_fps[-1]:.1f} per CPU second")


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f} to {max(values):.{digits}f})")


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def report(run: Run, *, started: str, loads: tuple[str, str], command: str, keys: int,
           wall_minutes: float) -> str:
    clips = [result.clip for result in run.clips]
    real = [c for c in clips if c.real]
    every = [r for result in run.clips for r in [result]]
    psnrs = [value for result in every for value in result.psnr]
    ssims = [value for result in every for value in result.ssim]
    sizes = [value for result in every for value in result.size_change]
    fps = [value for result in every for value in result.embed_fps]
    cpu_fps = [value for result in every for value in result.embed_cpu_fps]
    realtime = [value for result in every for value in result.realtime]
    reads = [value for result in every for value in result.read_seconds]
    informed = [value for result in every for value in result.informed_seconds]
    lines = [
        f"Run with `{command}` ({len(clips)} clips, {keys} random key"
        f"{'s' if keys > 1 else ''} each, each key with its own random 64-bit payload; every "
        "trial one embed, one attack, one read).",
        f"Machine: {machine()} (shared with other work; `nproc` {os.cpu_count()}); numpy "
        f"{np.__version__}, PyAV {av.__version__} (FFmpeg libavcodec "
        f"{'.'.join(map(str, av.library_versions['libavcodec']))}); {started}. "
        f"Load average before: {loads[0]}; after: {loads[1]}; {wall_minutes:.0f} minutes "
        "in all.",
        "",
        "Corpus: " + ", ".join(
            f"{c.name} ({'real' if c.real else 'generated'}, {c.width}x{c.height} "
            f"{c.fps} fps, {c.seconds:g} s, {c.container}, sound: {c.soundtrack})"
            for c in clips)
        + f". {len(real)} of {len(clips)} are real material; "
        "tests/watermark/video_clips.py says what each is and why.",
        "",
        "| attack (exact 64-bit payload) | read | target | all clips | real material only "
        "| all clips, the picture's evidence alone |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        lines.append(f"| {row.name} | {'informed' if row.informed else 'blind'} | "
                     f"{row.target:g}% | {run.everything.cell(row.name)} | "
                     f"{run.real.cell(row.name)} | {run.picture.cell(row.name)} |")
    fp_rate = 100 * run.false_positives / max(run.false_positive_reads, 1)
    lines += [
        f"| unmarked master, or marked copy under another key: read says found | blind | "
        f"<= 0.01% | {fp_rate:.2f}% ({run.false_positives}/{run.false_positive_reads}) | | |",
        f"| attacked copy read as another payload | | 0 | {len(run.wrong)} | | |",
        f"| luma PSNR marked vs master, dB (median, min to max) | | reported | "
        f"{spread(psnrs)} | {spread(_of(run, 'psnr', real=True))} | |",
        f"| luma SSIM marked vs master (median, min to max) | | reported | {spread(ssims, 4)} | "
        f"{spread(_of(run, 'ssim', real=True), 4)} | |",
        f"| file size change, % (median, min to max) | | reported | {spread(sizes)} | | |",
        f"| embed, frames/s of the whole call (median, min to max) | | reported | "
        f"{spread(fps)} | | |",
        f"| embed, frames per CPU second (all threads' CPU time; load-independent) | | "
        f"reported | {spread(cpu_fps)} | | |",
        f"| embed, real-time factor (clip s / embed s) | | reported | {spread(realtime, 2)} "
        "| | |",
        f"| blind read of the marked copy, s (median, min to max) | | reported | "
        f"{spread(reads, 2)} | | |",
        f"| informed read (crop row), s (median, min to max) | | reported | "
        f"{spread(informed, 2)} | | |",
    ]
    if run.speed_clip is not None:
        c = run.speed_clip
        lines.append(
            f"| speed: embed {c.width}x{c.height} {c.fps} fps H.264 ({c.name}, {c.seconds:g} s"
            f"), {len(run.speed_fps)} rounds: frames/s (median, min to max); real-time factor; "
            "frames per CPU second | | reported | "
            f"{spread(run.speed_fps)}; {spread(run.speed_realtime, 2)}; "
            f"{spread(run.speed_cpu_fps)} | | |")
    lines.append(f"| copies refused by embed's self-check | | 0 | {len(run.refused)} | | |")
    lines.append("")
    missed = [row for row in ROWS if (rate := run.everything.rate(row.name)) is not None
              and rate < row.target]
    if missed:
        lines.append("Rows under their target: " + "; ".join(
            f"{row.name} ({run.everything.cell(row.name)} against {row.target:g}%)"
            for row in missed) + ".")
    else:
        lines.append("Every robustness row meets its target on this corpus.")
    if fp_rate > 0.01:
        lines.append(f"False positives above target: {', '.join(run.unmarked_found)}.")
    if run.everything.misses:
        lines += ["", "Misses (attack: clip x failed trials):", ""]
        lines += [f"- {row}: " + ", ".join(f"{name} x{names.count(name)}"
                                           for name in dict.fromkeys(names))
                  for row, names in run.everything.misses.items()]
    if run.wrong:
        lines += ["", "Read as another payload: " + "; ".join(run.wrong)]
    if run.refused:
        lines += ["", "Refused by embed: " + "; ".join(run.refused)]
    if run.errors:
        lines += ["", "Errors: " + "; ".join(run.errors[:20])
                  + (f" (and {len(run.errors) - 20} more)" if len(run.errors) > 20 else "")]
    lines += [
        "",
        "Each clip on its own:",
        "",
        "| clip | kind | size, rate, length | PSNR dB (min) | SSIM (min) | size change % "
        "(median) | embed frames/s (median) | real-time factor (median) | misses by row |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in run.clips:
        c = result.clip
        misses = ", ".join(f"{row}: {count}/{result.keys}"
                           for row, count in result.misses.items()) or "none"
        lines.append(
            f"| {c.name} | {'real' if c.real else 'generated'}: {c.kind} | {c.width}x{c.height} "
            f"{c.fps} fps {c.seconds:g} s {c.container} | "
            f"{min(result.psnr, default=float('nan')):.1f} | "
            f"{min(result.ssim, default=float('nan')):.4f} | "
            f"{statistics.median(result.size_change) if result.size_change else float('nan'):.1f}"
            f" | {statistics.median(result.embed_fps) if result.embed_fps else float('nan'):.1f}"
            f" | {statistics.median(result.realtime) if result.realtime else float('nan'):.2f}"
            f" | {misses} |")
    return "\n".join(lines) + "\n"


def _of(run: Run, measure: str, *, real: bool) -> list[float]:
    return [value for result in run.clips if result.clip.real == real
            for value in getattr(result, measure)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="two 360p clips, one key, a 4-s speed clip")
    parser.add_argument("--keys", type=int, default=None, help="keys per clip (default 3)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of the 1080p speed row (default 5; --quick 2)")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--only", default=None,
                        help="comma-separated clip kinds to run (a subset of the corpus)")
    parser.add_argument("--speed-only", action="store_true", help="only the speed row")
    parser.add_argument("--out", type=Path, default=None, help="also write the section here")
    parser.add_argument("--write", action="store_true",
                        help='write the result into docs/BENCHMARKS.md ("Video mark")')
    args = parser.parse_args()
    keys = args.keys or (1 if args.quick else 3)
    rounds = args.rounds or (2 if args.quick else 5)
    command = ".venv/bin/python benchmarks/video/run.py" + (" --quick" if args.quick else "")
    if args.keys:
        command += f" --keys {args.keys}"
    if args.rounds:
        command += f" --rounds {args.rounds}"
    if args.only:
        command += f" --only {args.only}"
    started = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()
    begin = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    run = Run()
    clips = [] if args.speed_only else corpus(quick=args.quick)
    if args.speed_only:
        command += " --speed-only"
    if args.only:
        kinds = set(args.only.split(","))
        clips = [c for c in clips if c.kind in kinds or c.name in kinds]
    for number, each in enumerate(clips):
        _log(f"{each.name} ({each.width}x{each.height}, {each.seconds:g} s)")
        run_clip(run, each, keys, rng)
        if args.out:  # what is done so far, in case the run is cut short
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(f"(partial: {number + 1} of {len(clips)} clips, no speed "
                                "row yet)\n\n" + report(
                                    run, started=started, loads=(load_before, _load()),
                                    command=command, keys=keys,
                                    wall_minutes=(time.perf_counter() - begin) / 60))
    _log("speed row")
    run_speed(run, SPEED_QUICK if args.quick else SPEED, rounds, rng)
    body = report(run, started=started, loads=(load_before, _load()), command=command,
                  keys=keys, wall_minutes=(time.perf_counter() - begin) / 60)
    body += f"\nPython {platform.python_version()}.\n"
    print(body)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body)
    if args.write:
        write_section("Video mark", body)


if __name__ == "__main__":
    main()
