"""Sealed recordings beside the present audio mark, on the audio mark's corpus and attacks.

Run it with `.venv/bin/python benchmarks/sealed/recordings.py` (`--quick`: two clips, one
payload; `--write`: put the result in docs/BENCHMARKS.md, section "Sealed recordings").
The corpus is benchmarks/audio/corpus.py (real recordings fetched with pip into
benchmarks/.work/, and generated clips), each written as a 16-bit WAV master; the attacks
are benchmarks/audio/attacks.py's table.

Per clip and payload, in one run:
- sealed: `seal`, `unseal` with the licence's table, the attack, then `accuse` against
  1,000 issued payloads (the true one among them); a success names the true payload and
  no other, and any other payload named is counted as a false accusation;
- present: `embed_audio_bytes` with the same payload, the attack, then an informed
  `extract_audio_bytes` with the master; a success reads the exact payload.
Quality is the SNR of the whole copy against the master (both decoded by libsndfile), and
the SNR of the container opened with an all-zero table ("no table"). Timings are whole
calls on bytes (file in, file out), median and range over every clip and payload.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import io
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import NDArray
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.audio.attacks import ATTACKS
from benchmarks.audio.corpus import RATE, corpus
from benchmarks.common import machine, today, write_section
from watermark.audio.codec import embed_audio_bytes, extract_audio_bytes
from watermark.sealed import accuse, container_info, personal_table, seal, unseal
from watermark.sealed.table import MAGIC

ISSUED = 1000


def wav(samples: NDArray[np.float32], rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype=subtype)
    return out.getvalue()


def decoded(data: bytes) -> NDArray[np.float64]:
    values, _rate = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return np.asarray(values, np.float64)


def snr(reference: NDArray[np.float64], copy: NDArray[np.float64]) -> float:
    return float(10 * np.log10(np.square(reference).sum() / np.square(reference - copy).sum()))


def timed(call, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = call(*args)
    return value, time.perf_counter() - start


def run(*, quick: bool) -> str:
    rng = np.random.default_rng(20261203)
    clips = corpus(quick=quick)
    rounds = 1 if quick else 2
    key = rng.bytes(32)
    sealed_ok: dict[str, int] = defaultdict(int)
    present_ok: dict[str, int] = defaultdict(int)
    wrong = 0
    trials = 0
    quality: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    sizes: list[tuple[int, int, int]] = []
    progress = tqdm(total=len(clips) * rounds * len(ATTACKS), desc="sealed recordings")
    for clip in clips:
        master = wav(clip.samples)
        reference = decoded(master)
        minutes = clip.seconds / 60
        container, took = timed(seal, master, "audio/wav", key)
        seconds["seal"].append(took / minutes)
        size = container_info(container).table_size
        blank = unseal(container, MAGIC + size.to_bytes(4, "big") + bytes(2 * size))
        quality["no table"].append(snr(reference, decoded(blank)))
        sizes.append((len(master), len(container), 2 * size + 16))
        for _ in range(rounds):
            issued = [int(v) for v in rng.integers(0, 2**63, ISSUED, dtype=np.int64)]
            payload = issued[int(rng.integers(0, ISSUED))]
            table = personal_table(key, payload, size)
            copy, took = timed(unseal, container, table)
            seconds["unseal"].append(took / minutes)
            present, took = timed(embed_audio_bytes, master, key, payload)
            seconds["present embed"].append(took / minutes)
            quality["sealed"].append(snr(reference, decoded(copy)))
            quality["present"].append(snr(reference, decoded(present)))
            for name, (attack, _target, _anchor) in ATTACKS.items():
                attack_rng = np.random.default_rng(int(rng.integers(0, 2**32)))
                suspect, rate = attack(decoded(copy).astype(np.float32), attack_rng)
                result, took = timed(accuse, wav(suspect, rate, "FLOAT"), master, key, issued)
                seconds["accuse (1,000 licences)"].append(took)
                named = {c.payload for c in result.accused}
                sealed_ok[name] += named == {payload}
                wrong += len(named - {payload})
                attacked, rate = attack(decoded(present).astype(np.float32), attack_rng)
                read = extract_audio_bytes(wav(attacked, rate, "FLOAT"), key, master)
                present_ok[name] += read.found and read.payload == payload
                trials += 1
                progress.update()
    progress.close()
    per = len(clips) * rounds
    lines = [
        f"Measured {today()} on {machine()}, `.venv/bin/python benchmarks/sealed/recordings.py"
        f"{' --quick' if quick else ''}`: {len(clips)} clips "
        f"({', '.join(c.name for c in clips)}), {rounds} payload(s) each, every attack of "
        f"the audio mark's table; sealed copies accused against {ISSUED:,} issued payloads.",
        "",
        "| attack | sealed: true licence named, no other | present audio mark: payload read |",
        "|---|---|---|",
    ]
    for name in ATTACKS:
        lines.append(f"| {name} | {sealed_ok[name]}/{per} | {present_ok[name]}/{per} |")
    lines += [
        "",
        f"Innocent licences named, over {trials} sealed accusations: **{wrong}**.",
        "",
        "| quality (SNR against the master, dB) | median | min | max |",
        "|---|---|---|---|",
    ]
    for name, label in (("sealed", "sealed copy"), ("present", "present audio mark"),
                        ("no table", "sealed signal, no table")):
        values = quality[name]
        lines.append(f"| {label} | {statistics.median(values):.1f} | {min(values):.1f} | "
                     f"{max(values):.1f} |")
    master_bytes = sum(s[0] for s in sizes)
    lines += [
        "",
        "| cost | median | range |",
        "|---|---|---|",
    ]
    for name, unit in (("seal", "s per minute of audio"), ("unseal", "s per minute of audio"),
                       ("present embed", "s per minute of audio"),
                       ("accuse (1,000 licences)", "s per copy")):
        values = seconds[name]
        lines.append(f"| {name} ({unit}) | {statistics.median(values):.2f} | "
                     f"{min(values):.2f} to {max(values):.2f} |")
    ratio = statistics.median(seconds["unseal"]) / statistics.median(seconds["present embed"])
    lines += [
        "",
        f"Unsealing takes {ratio:.2f} x the present mark's embedding, same run, same clips. "
        f"The containers are {sum(s[1] for s in sizes) / master_bytes:.2f} x the 16-bit WAV "
        f"masters' bytes (the ordinary ciphertext is the master plus 16 bytes per MiB "
        f"piece). A personal table is {statistics.median([s[2] for s in sizes]) / 1024:.0f} "
        "KiB (median).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two clips, one payload")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args()
    report = run(quick=args.quick)
    print(report)
    if args.write:
        write_section("Sealed recordings", report)


if __name__ == "__main__":
    main()
