"""Sealed delivery benchmark: quality, robustness beside the present image mark, security
experiments and cost, on real photographs, in one run.

Run it with `.venv/bin/python -m benchmarks.sealed.run` (about 40 minutes on 2 cores;
`--quick` is a smoke run of under 3 minutes on two small photographs, written nowhere unless
`--out` says where). The full run replaces the "Sealed delivery" section of
docs/BENCHMARKS.md, or writes it to `--out FILE`; the raw figures go to
benchmarks/.work/sealed.json (`--render FILE` writes the section again from such a file).

What is measured (every photograph of tests/watermark/photographs.py, each sealed under a
key of its own, with 1,000 issued licences of random payloads):

1. quality: PSNR of unsealed copies (several payloads per photograph) against the master;
2. the container without a table: the zero table's unseal (the sealed signal viewed
   directly) and the container's complement alone, against the master;
3. robustness: every attack of tests/watermark/attacks.py on sealed copies (`accuse`
   against the 1,000 issued payloads; a success names the buyer and no one else) and on the
   present mark's copies (`embed_bytes`, then `extract_bytes` with the master), same run;
4. security: (1) one buyer estimating and subtracting its own mark, at rising strength;
   (2) coalitions of 2, 3, 5 and 8 buyers averaging or mixing their copies; (3) 10,000
   checks of copies that carry no checked licence, on 256 x 256 crops, 2 processes;
5. cost: container and table bytes, seal / table / unseal time against `embed_bytes` on the
   same image, and detection against 1,000,000 issued licences.
"""

from __future__ import annotations

import os

# One thread per process: the run uses at most 2 processes on a shared 2-core machine.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write_section
from benchmarks.sealed import tamper
from tests.watermark.attacks import BLIND, INFORMED, TARGETS
from tests.watermark.photographs import PHOTOGRAPHS, jpeg_file, photograph
from watermark.codec import embed_bytes, extract_bytes
from watermark.sealed import (
    accuse,
    container_info,
    keyed,
    personal_table,
    seal_image,
    tardos,
    unseal,
)
from watermark.sealed import table as sealed_table
from watermark.sealed.container import read_container
from watermark.sealed.detect import Accusation
from watermark.sealed.params import CODE_BITS, EPSILON, MAX_COALITION
from watermark.selfcheck import psnr

SEED = 20261203
ISSUED = 1000
RAW = ROOT / "benchmarks" / ".work" / "sealed.json"
ROWS = [*BLIND, *INFORMED]
ATTACKS = {**BLIND, **INFORMED}
COALITION_SIZES = [2, 3, 5, 8]
MIXES = ["average", "per cell", "per 32x32 block", "per pixel"]
CROP = 256
JPEG_MASTERS = {"rocket": "rocket.jpg", "hubble_deep_field": "hubble_deep_field.jpg",
                "retina": "retina.jpg"}


@dataclass(frozen=True)
class Setup:
    photos: tuple[str, ...]
    buyers: int  # payloads per photograph for quality and robustness
    coalition_trials: int
    false_checks: int
    crops_per_photo: int
    rounds: int
    million: int
    quick: bool


FULL = Setup(tuple(PHOTOGRAPHS), 3, 5, 10_000, 4, 3, 1_000_000, quick=False)
QUICK = Setup(("camera", "chelsea"), 1, 1, 120, 2, 2, 100_000, quick=True)


# ---------------------------------------------------------------- works and copies


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def png_pixels(array: np.ndarray) -> bytes:
    return png_of(Image.fromarray(array))


def payloads(rng: np.random.Generator, count: int) -> list[int]:
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.update(int(v) for v in rng.integers(0, 2**64 - 1, size=count, dtype=np.uint64,
                                                   endpoint=True))
    return sorted(chosen)[:count]


@dataclass(frozen=True)
class Work:
    """A master sealed under its key, with the payloads of its issued licences."""

    name: str
    master: bytes
    key: bytes
    container: bytes
    issued: list[int]

    @property
    def table_size(self) -> int:
        return container_info(self.container).table_size

    def copy(self, payload: int) -> bytes:
        return unseal(self.container, personal_table(self.key, payload, self.table_size))

    def public(self) -> tamper.Public:
        parts = read_container(self.container)
        info = parts.info
        return tamper.Public(info.cell, parts.scale, info.lookup_seed, info.table_size)


def _rng(*words: int | str) -> np.random.Generator:
    entropy = [int.from_bytes(hashlib.sha256(str(w).encode()).digest()[:8], "big")
               for w in words]
    return np.random.default_rng([SEED, *entropy])


@cache
def work(name: str, crop: int = -1) -> Work:
    """The photograph (or its crop number `crop`, 256 x 256) sealed under its own key."""
    image = photograph(name)
    if crop >= 0:
        place = _rng("crop", name, crop)
        left = int(place.integers(0, image.width - CROP + 1))
        top = int(place.integers(0, image.height - CROP + 1))
        image = image.crop((left, top, left + CROP, top + CROP))
    rng = _rng("work", name, crop)
    key = rng.bytes(32)
    master = png_of(image)
    return Work(f"{name}" if crop < 0 else f"{name}#{crop}", master, key,
                seal_image(master, key), payloads(rng, ISSUED))


def verdict(accusation: Accusation, buyers: Iterable[int]) -> dict[str, Any]:
    guilty = set(buyers)
    named = [c.payload for c in accusation.accused]
    top = accusation.candidates[0] if accusation.candidates else None
    innocent_scores = [c.score for c in accusation.candidates if c.payload not in guilty]
    return {
        "guilty_named": sum(p in guilty for p in named),
        "innocents_named": sum(p not in guilty for p in named),
        "threshold": accusation.threshold,
        "top_score": top.score if top else 0.0,
        "top_is_guilty": bool(top and top.payload in guilty),
        "best_innocent": max(innocent_scores, default=float("-inf")),
        "guilty_best": max((c.score for c in accusation.candidates if c.payload in guilty),
                           default=float("nan")),
    }


# ---------------------------------------------------------------- per photograph


def photo_task(name: str, setup: Setup) -> dict[str, Any]:
    """Quality, the tableless container, robustness side by side, and one buyer's removal
    attacks, on one photograph."""
    w = work(name)
    rng = _rng("photo", name)
    master = pixels(w.master)
    info = container_info(w.container)
    buyers = w.issued[: setup.buyers]
    out: dict[str, Any] = {"name": name, "width": info.width, "height": info.height,
                           "mode": info.mode, "cell": info.cell,
                           "table_size": info.table_size}
    copies = {p: w.copy(p) for p in buyers}
    extra = w.issued[setup.buyers : setup.buyers + 3]  # quality only
    out["psnr"] = [psnr(master, pixels(w.copy(p))) for p in [*buyers, *extra]]
    zero = sealed_table.MAGIC + info.table_size.to_bytes(4, "big") + bytes(2 * info.table_size)
    out["zero_table_psnr"] = psnr(master, pixels(unseal(w.container, zero)))
    parts = read_container(w.container)
    complement = np.clip(parts.complement, 0, 255).astype(np.uint8)
    out["complement_psnr"] = psnr(master.reshape(complement.shape), complement)
    rebuilt = tamper.from_container(w.container)
    out["rebuilt_psnr"] = psnr(master, rebuilt)
    named = accuse(png_pixels(rebuilt), w.master, w.key, w.issued)
    out["rebuilt_named"] = len(named.accused)
    out["rebuilt_top"] = named.candidates[0].score / named.threshold

    sealed: dict[str, list[dict[str, Any]]] = {row: [] for row in ROWS}
    present: dict[str, list[bool]] = {row: [] for row in ROWS}
    out["present_psnr"] = []
    for buyer in buyers:
        with Image.open(io.BytesIO(copies[buyer])) as opened:
            copy_image = opened.copy()
        marked = embed_bytes(w.master, w.key, buyer)
        out["present_psnr"].append(psnr(master, pixels(marked)))
        with Image.open(io.BytesIO(marked)) as opened:
            marked_image = opened.copy()
        for row in ROWS:
            suspect = png_of(ATTACKS[row](copy_image, rng))
            result = verdict(accuse(suspect, w.master, w.key, w.issued), [buyer])
            result["ok"] = result["guilty_named"] == 1 and result["innocents_named"] == 0
            sealed[row].append(result)
            read = extract_bytes(png_of(ATTACKS[row](marked_image, rng)), w.key,
                                 reference=w.master)
            present[row].append(bool(read.found and read.payload == buyer))
    out["sealed"], out["present"] = sealed, present

    buyer = buyers[0]
    own = pixels(copies[buyer])
    removal = []
    for family, level, attack in tamper.removal_attacks(w.public(), rng, setup.quick):
        attacked = attack(own)
        result = verdict(accuse(png_pixels(attacked), w.master, w.key, w.issued), [buyer])
        removal.append({"family": family, "level": level, "psnr": psnr(master, attacked),
                        **result})
    out["removal"] = removal
    out["own_psnr"] = psnr(master, own)
    return out


# ---------------------------------------------------------------- coalitions


def coalition_task(size: int, mix: str, trial: int, photo: str) -> dict[str, Any]:
    w = work(photo)
    rng = _rng("coalition", size, mix, trial)
    members = [w.issued[int(i)] for i in rng.choice(len(w.issued), size=size, replace=False)]
    copies = [pixels(w.copy(p)) for p in members]
    if mix == "average":
        forged = tamper.average(copies)
    elif mix == "per cell":
        forged = tamper.mix_blocks(copies, container_info(w.container).cell, rng)
    elif mix == "per 32x32 block":
        forged = tamper.mix_blocks(copies, 32, rng)
    else:
        forged = tamper.mix_blocks(copies, 1, rng)
    result = verdict(accuse(png_pixels(forged), w.master, w.key, w.issued), members)
    return {"size": size, "mix": mix, "trial": trial, "photo": photo,
            "psnr": psnr(pixels(w.master), forged), **result}


# ---------------------------------------------------------------- false accusations


def false_task(index: int, photos: tuple[str, ...], crops: int) -> dict[str, Any]:
    """Check `index`: an unmarked master (even) or the copy of a licence outside the
    checked set (odd), under one attack of the table, against the 1,000 issued."""
    rng = _rng("false", index)
    w = work(photos[(index // 2) % len(photos)], (index // (2 * len(photos))) % crops)
    row = ROWS[int(rng.integers(len(ROWS)))]
    if index % 2 == 0:
        kind, source = "unmarked master", w.master
    else:
        outsider = payloads(rng, 1)[0]
        while outsider in w.issued:
            outsider = payloads(rng, 1)[0]
        kind, source = "licence not checked", w.copy(outsider)
    with Image.open(io.BytesIO(source)) as opened:
        suspect = png_of(ATTACKS[row](opened.copy(), rng))
    accusation = accuse(suspect, w.master, w.key, w.issued)
    top = accusation.candidates[0]
    return {"kind": kind, "row": row, "named": len(accusation.accused), "top": top.score,
            "threshold": accusation.threshold, "bound": top.false_accusation_bound,
            "work": w.name}


# ---------------------------------------------------------------- cost


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def cost(setup: Setup) -> dict[str, Any]:
    """Sizes and times, in this process alone (the pool is not running)."""
    photos: list[dict[str, Any]] = []
    for name in tqdm(setup.photos, desc="cost", file=sys.stderr):
        w = work(name)
        info = container_info(w.container)
        megapixels = info.width * info.height / 1e6
        buyer = w.issued[0]
        times: dict[str, list[float]] = {"seal": [], "table": [], "unseal": [], "embed": []}
        ratio: list[float] = []
        for _ in range(setup.rounds):
            _, seal_s = timed(lambda w=w: seal_image(w.master, w.key))
            table, table_s = timed(lambda w=w, b=buyer: personal_table(w.key, b, w.table_size))
            _, unseal_s = timed(lambda w=w, t=table: unseal(w.container, t))
            _, embed_s = timed(lambda w=w, b=buyer: embed_bytes(w.master, w.key, b))
            for label, value in (("seal", seal_s), ("table", table_s), ("unseal", unseal_s),
                                 ("embed", embed_s)):
                times[label].append(value)
            ratio.append(unseal_s / embed_s)
        photos.append({"name": name, "megapixels": megapixels, "master": len(w.master),
                       "container": len(w.container), "table": 12 + 2 * info.table_size,
                       "times": times, "unseal_over_embed": ratio})
    jpegs = []
    for name, file in JPEG_MASTERS.items():
        if name not in setup.photos:
            continue
        master = jpeg_file(file)
        key = _rng("jpeg", name).bytes(32)
        container = seal_image(master, key)
        info = container_info(container)
        copy = unseal(container, personal_table(key, 1, info.table_size))
        jpegs.append({"name": file, "master": len(master), "container": len(container),
                      "copy": len(copy), "table": 12 + 2 * info.table_size})

    # Detection against a million licences: the suspect's evidence once, then the scores.
    w = work(setup.photos[0])
    suspect = w.copy(w.issued[0])
    raw_key = w.key
    million = [w.issued[0], *payloads(_rng("million"), setup.million - 1)]
    evidence_s, score_s, bound_s = [], [], []
    named: list[int] = []
    for _ in range(max(2, setup.rounds // 2 + 1)):
        _, seconds = timed(lambda s=suspect, w=w: accuse(s, w.master, w.key, []))
        evidence_s.append(seconds)
    from watermark.codec import READABLE_FORMATS, open_image
    from watermark.planes import MIN_SUSPECT_PIXELS, luma_of
    from watermark.sealed.detect import evidence

    soft, _alignment, _strength = evidence(
        luma_of(open_image(suspect, formats=READABLE_FORMATS, min_pixels=MIN_SUSPECT_PIXELS)),
        luma_of(open_image(w.master)), raw_key)
    p = keyed.biases(raw_key, CODE_BITS, MAX_COALITION)
    for _ in range(3 if not setup.quick else 1):
        scores, seconds = timed(lambda: tardos.scores(raw_key, million, p, soft))
        score_s.append(seconds)
        threshold, seconds = timed(lambda: tardos.TailBound(p, soft).threshold(
            len(million), EPSILON))
        bound_s.append(seconds)
        named = [million[i] for i in np.flatnonzero(scores >= threshold)]
    return {"photos": photos, "jpegs": jpegs, "million": {
        "licences": len(million), "photo": w.name, "evidence_s": evidence_s,
        "scores_s": score_s, "threshold_s": bound_s, "named_is_buyer": named == [w.issued[0]],
        "named": len(named)}}


# ---------------------------------------------------------------- the run


def _star(args: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    function, arguments = args
    return function(*arguments)


def save(raw: dict[str, Any], target: Path) -> None:
    """The raw figures so far (a long run can be rendered from what it finished)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(raw, indent=1))


def run(setup: Setup, target: Path, command: str) -> dict[str, Any]:
    started = time.time()
    load_before = os.getloadavg()
    raw: dict[str, Any] = {"setup": setup.__dict__, "machine": machine(),
                           "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
                           "load_before": load_before, "numpy": np.__version__,
                           "command": command}
    raw["cost"] = cost(setup)
    save(raw, target)
    by_size = sorted(setup.photos, key=lambda n: -photograph(n).width * photograph(n).height)
    photo_jobs = [(photo_task, (name, setup)) for name in by_size]
    small = [n for n in setup.photos if n != "retina"]
    coalition_jobs = [
        (coalition_task, (size, mix, trial, small[(trial + i) % len(small)]))
        for i, size in enumerate(COALITION_SIZES) for mix in MIXES
        for trial in range(setup.coalition_trials)]
    false_jobs = [(false_task, (i, setup.photos, setup.crops_per_photo))
                  for i in range(setup.false_checks)]
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        raw["photos"] = list(tqdm(pool.imap(_star, photo_jobs), total=len(photo_jobs),
                                  desc="photographs", file=sys.stderr))
        save(raw, target)
        raw["coalitions"] = list(tqdm(pool.imap_unordered(_star, coalition_jobs),
                                      total=len(coalition_jobs), desc="coalitions",
                                      file=sys.stderr))
        save(raw, target)
        raw["false"] = []
        for result in tqdm(pool.imap_unordered(_star, false_jobs, chunksize=20),
                           total=len(false_jobs), desc="false accusations", file=sys.stderr):
            raw["false"].append(result)
            if len(raw["false"]) % 500 == 0:
                raw["minutes"] = (time.time() - started) / 60.0
                raw["load_after"] = os.getloadavg()
                save(raw, target)
    raw["minutes"] = (time.time() - started) / 60.0
    raw["load_after"] = os.getloadavg()
    save(raw, target)
    return raw


# ---------------------------------------------------------------- the report


def _pct(hits: int, trials: int) -> str:
    return f"{100.0 * hits / trials:.0f}% ({hits}/{trials})" if trials else "-"


def _spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def _names(photos: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['name']} {p['width']}x{p['height']} {p['mode']}" for p in photos)


def render(raw: dict[str, Any], command: str) -> str:
    setup = raw["setup"]
    photos = raw["photos"]
    lines = [
        f"Run with `{command}` ({raw['minutes']:.0f} minutes; the figures below are this "
        "run's; `--quick` is a smoke run on two small photographs, written nowhere). "
        "Code: `benchmarks/sealed/run.py`, the buyers' attacks in `benchmarks/sealed/tamper.py`.",
        f"Machine: {raw['machine']}, numpy {raw['numpy']}, one thread per process, at most 2 "
        f"processes (the 2 cores are shared with other work); {raw['started']} UTC. Load "
        f"average before: {', '.join(f'{x:.2f}' for x in raw['load_before'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in raw['load_after'])}.",
        "",
        f"Material: the {len(photos)} photographs of tests/watermark/photographs.py "
        f"({_names(photos)}), "
        "each saved as PNG (the master) and sealed once under a random key of its own, with "
        f"{ISSUED:,} issued licences of random 64-bit payloads. Every accusation below is "
        f"`accuse` against all {ISSUED:,} (epsilon {EPSILON:g}: the threshold keeps the chance "
        "of naming any innocent among them below it).",
        "",
    ]
    lines += _quality(raw)
    lines += _robustness(raw)
    lines += _removal(raw)
    lines += _coalitions(raw)
    lines += _false(raw)
    lines += _cost(raw)
    lines += _reading(raw)
    del setup
    return "\n".join(lines)


def _reading(raw: dict[str, Any]) -> list[str]:
    """What the figures say, in words, from the same figures."""
    photos = raw["photos"]
    rebuilt = [p["rebuilt_psnr"] for p in photos]
    copies = [v for p in photos for v in p["psnr"]]
    escapes = [(p["own_psnr"] - r["psnr"], r["family"], p["name"], r["level"], r["psnr"])
               for p in photos for r in p["removal"] if r["guilty_named"] == 0]
    innocents = (sum(r["named"] for r in raw["false"])
                 + sum(r["innocents_named"] for r in raw["coalitions"])
                 + sum(r["innocents_named"] for p in photos for r in p["removal"])
                 + sum(r["innocents_named"] for p in photos for row in ROWS
                       for r in p["sealed"][row]))
    m = raw["cost"]["million"]
    lines = ["### Reading it", ""]
    if statistics.median(rebuilt) > 10:
        worst = max(photos, key=lambda p: p["rebuilt_psnr"] - min(p["psnr"]))
        lines.append(
            "- **The container alone is not useless.** Viewed directly (the zero table) it "
            "is noise, but a picture estimated from the container alone, with no table and "
            f"no key, reaches {statistics.median(rebuilt):.1f} dB median "
            f"({min(rebuilt):.1f} to {max(rebuilt):.1f}) against the master, and carries no "
            "licence's mark (`accuse` names no one in it). Only one coefficient per cell is "
            "sealed; the rest of every cell, the complement, is in the clear, and a "
            "photograph's continuity across a cell's border gives the difference of two "
            "neighbouring cells' coefficients. `tamper.from_container` solves for all of "
            "them at once (the exact least-squares minimum of the picture's squared "
            "pixel-to-pixel differences, one sparse solve); docs/SEALED.md names this "
            "attack (in-painting) among what is not guaranteed and puts its cost at about "
            "10 dB. Here it costs "
            f"{statistics.median(copies) - statistics.median(rebuilt):.1f} dB at the median "
            f"and only {min(worst['psnr']) - worst['rebuilt_psnr']:.1f} dB on "
            f"{worst['name']} ({worst['rebuilt_psnr']:.1f} dB unmarked against "
            f"{min(worst['psnr']):.1f} dB marked). Every buyer's agent decrypts the pieces "
            "to this container, so a modified agent can ignore its table and keep an "
            "untraceable copy at that quality.")
    if escapes:
        drop, family, name, level, quality = min(escapes)
        lines.append(
            "- One buyer removing its own mark: the cheapest escape gave up "
            f"{drop:.1f} dB ({family}, {level}, on {name}: {quality:.1f} dB). Compare the "
            "in-painting above, which needs no copy and no table at all.")
    lines.append(
        f"- Innocents named in the whole run (robustness, removal, coalitions, false "
        f"accusations): {innocents}.")
    lines.append(
        f"- Detection against {m['licences']:,} licences takes "
        f"{statistics.median(m['scores_s']):.0f} s of scoring on one thread; most of it is "
        "drawing every licence's 2,048-bit codeword again from its payload "
        "(`tardos.codewords`), not the products.")
    return [*lines, ""]


def _quality(raw: dict[str, Any]) -> list[str]:
    photos = raw["photos"]
    values = [v for p in photos for v in p["psnr"]]
    zero = [p["zero_table_psnr"] for p in photos]
    comp = [p["complement_psnr"] for p in photos]
    rebuilt = [p["rebuilt_psnr"] for p in photos]
    present = [v for p in photos for v in p["present_psnr"]]
    return [
        "### Quality, and the container without a table",
        "",
        "| measure | target | figure |",
        "|---|---|---|",
        f"| PSNR of unsealed copies against the master, dB: median, min ({len(values)} copies, "
        f"{len(values) // len(photos)} payloads per photograph) | >= 40 | "
        f"{statistics.median(values):.1f}, {min(values):.1f} |",
        f"| the present mark's copies (`embed_bytes`), same payloads, dB: median, min | - | "
        f"{statistics.median(present):.1f}, {min(present):.1f} |",
        "| the sealed signal viewed directly (unsealed with an all-zero table), dB: median, "
        f"max | <= 10 | {statistics.median(zero):.1f}, {max(zero):.1f} |",
        "| the container's complement alone (the master minus each cell's bump component, "
        "clipped to 0..255: the picture with every mark-carrying coefficient removed), dB: "
        f"median, max | reported | {statistics.median(comp):.1f}, {max(comp):.1f} |",
        "| **the container alone, estimated** (no table, no key: each cell's coefficient "
        "solved for the smoothest picture given the complement, `tamper.from_container`), "
        f"dB: median, min, max | <= 10 | **{statistics.median(rebuilt):.1f}**, "
        f"{min(rebuilt):.1f}, {max(rebuilt):.1f} |",
        "| licences `accuse` names in those estimated pictures (of "
        f"{ISSUED:,}, each photograph) | - | {sum(p['rebuilt_named'] for p in photos)} "
        f"(top score / threshold at most {max(p['rebuilt_top'] for p in photos):.2f}) |",
        "",
        "Per photograph (PSNR, dB): "
        + "; ".join(f"{p['name']} {min(p['psnr']):.1f} (zero table {p['zero_table_psnr']:.1f}, "
                    f"complement {p['complement_psnr']:.1f}, estimated from the container "
                    f"{p['rebuilt_psnr']:.1f})" for p in photos) + ".",
        "",
    ]


def _robustness(raw: dict[str, Any]) -> list[str]:
    photos = raw["photos"]
    buyers = raw["setup"]["buyers"]
    lines = [
        "### Robustness, side by side with the present image mark",
        "",
        f"Each photograph, {buyers} buyers (payloads); every attack of "
        "tests/watermark/attacks.py applied to the buyer's sealed copy and, in the same run, "
        "to the present mark's copy of the same payload (`embed_bytes`). Sealed: a success "
        f"is `accuse` naming that buyer and no one else among the {ISSUED:,}. Present: a "
        "success is `extract_bytes` with the master as reference (informed, on every row, "
        "as `accuse` always is) reading the exact payload. The last columns: the buyer's "
        "score over the threshold (median, min) and innocents named.",
        "",
        "| attack | target | sealed | present mark | sealed: score / threshold | "
        "sealed: innocents named |",
        "|---|---|---|---|---|---|",
    ]
    weaker = []
    for row in ROWS:
        results = [r for p in photos for r in p["sealed"][row]]
        ok = sum(r["ok"] for r in results)
        present = [v for p in photos for v in p["present"][row]]
        margins = [r["guilty_best"] / r["threshold"] for r in results
                   if not math.isnan(r["guilty_best"])]
        margin = (f"{statistics.median(margins):.1f}, {min(margins):.1f}"
                  if len(margins) == len(results) else
                  f"{statistics.median(margins):.1f}, below the top 5 in "
                  f"{len(results) - len(margins)}" if margins else "-")
        mode = " (informed)" if row in INFORMED else ""
        lines.append(f"| {row}{mode} | {TARGETS[row] * 100:.0f}% | {_pct(ok, len(results))} "
                     f"| {_pct(sum(present), len(present))} | {margin} "
                     f"| {sum(r['innocents_named'] for r in results)} |")
        if ok / len(results) < sum(present) / len(present) - 0.05:
            weaker.append(row)
    missed = [row for row in ROWS if sum(r["ok"] for p in photos for r in p["sealed"][row])
              < TARGETS[row] * sum(len(p["sealed"][row]) for p in photos)]
    lines += ["", (f"Sealed rows below their target: {', '.join(missed)}." if missed
                   else "Every sealed row meets its target.")
              + (f" Rows where the sealed mark is clearly weaker than the present one: "
                 f"{', '.join(weaker)}." if weaker else ""), ""]
    misses = [f"{row}: {p['name']}" for row in ROWS for p in photos
              for r in p["sealed"][row] if not r["ok"]]
    if misses:
        lines += ["Sealed misses (one per failed trial): " + "; ".join(misses) + ".", ""]
    return lines


def _removal(raw: dict[str, Any]) -> list[str]:
    photos = raw["photos"]
    own = [p["own_psnr"] for p in photos]
    lines = [
        "### Security (1): one buyer removing its own mark",
        "",
        "The buyer has its own copy (PSNR "
        f"{statistics.median(own):.1f} dB median against the master, {min(own):.1f} min), the "
        "container's public parts (cell size, per-cell scales, the lookup seed) and no "
        "master. It estimates its mark and subtracts it, at rising strength: smoothing the "
        "luma (the change is added to R, G and B alike, as the mark is); re-estimating each "
        "cell's bump coefficient (`watermark.sealed.cells.project`) as the median or mean "
        "of its 8 neighbours' and subtracting the difference times the strength (x1 = "
        "replace it); the same estimate voted per table entry over the public lookups (each "
        "entry's sign taken from the cells that add it up, each cell's mark predicted "
        "again from the signs and subtracted); Gaussian noise; JPEG. One buyer per "
        f"photograph, {len(photos)} photographs per level; 'accused' = `accuse` names the "
        "buyer; PSNR of the attacked copy against the master.",
        "",
        "| attack | level | PSNR, dB: median (min-max) | buyer accused | innocents named |",
        "|---|---|---|---|---|",
    ]
    families: dict[str, list[dict[str, Any]]] = {}
    for p in photos:
        for r in p["removal"]:
            families.setdefault(r["family"], []).append(
                {**r, "photo": p["name"], "drop": p["own_psnr"] - r["psnr"]})
    summary = []
    for family, results in families.items():
        levels = list(dict.fromkeys(r["level"] for r in results))
        for level in levels:
            at = [r for r in results if r["level"] == level]
            lines.append(f"| {family} | {level} | {_spread([r['psnr'] for r in at], '', 1)} | "
                         f"{_pct(sum(r['guilty_named'] > 0 for r in at), len(at))} | "
                         f"{sum(r['innocents_named'] for r in at)} |")
        escaped = [r for r in results if r["guilty_named"] == 0]
        held = [r for r in results if r["guilty_named"] > 0]
        best_escape = min(escaped, key=lambda r: r["drop"], default=None)
        worst_held = max(held, key=lambda r: r["drop"], default=None)
        first = []  # per photograph: the PSNR of its first escape, weakest level first
        for name in dict.fromkeys(r["photo"] for r in results):
            mine = [r for r in results if r["photo"] == name and r["guilty_named"] == 0]
            if mine:
                first.append(min(r["drop"] for r in mine))
        summary.append(
            f"| {family} | "
            + (f"{best_escape['drop']:.1f} ({best_escape['photo']}, {best_escape['level']}: "
               f"{best_escape['psnr']:.1f} dB)" if best_escape else "never escaped")
            + f" | {statistics.median(first):.1f} ({len(first)} of {len(photos)}) |"
            if first else f"| {family} | never escaped | - |")
        summary[-1] += (f" {len(escaped)}/{len(results)} | "
                        + (f"{worst_held['drop']:.1f} ({worst_held['photo']}, "
                           f"{worst_held['level']}: {worst_held['psnr']:.1f} dB)"
                           if worst_held else "-") + " |")
    lines += [
        "",
        "Per family, in dB of PSNR given up against the buyer's own copy (the photographs' "
        "copies differ: moon and retina, with their black surrounds, start near 46-48 dB): "
        "the least given up by any escape (the attacker's best case), the median over the "
        "photographs whose buyer escaped at some level of the least it gave up, how many "
        "trials escaped, and the most given up while the buyer was still accused:",
        "",
        "| attack family | least given up by an escape (photograph, level: PSNR) | median "
        "over photographs | escapes | most given up, still accused |",
        "|---|---|---|---|---|",
        *summary,
        "",
    ]
    return lines


def _coalitions(raw: dict[str, Any]) -> list[str]:
    results = raw["coalitions"]
    trials = raw["setup"]["coalition_trials"]
    lines = [
        "### Security (2): coalitions",
        "",
        f"{trials} trials per cell of the table, each on one photograph (all but retina, "
        "in turn), with colluders drawn from the issued licences: their copies averaged, or "
        "mixed by choosing at random which copy each cell (the mark's cell), each 32 x 32 "
        "block or each pixel comes from. Colluders accused: min / median over the trials; "
        f"innocents named: total over the trials (target 0). The code is cut for coalitions "
        f"of up to {MAX_COALITION}; 8 is beyond it.",
        "",
        "| colluders | " + " | ".join(MIXES) + " |",
        "|---|" + "---|" * len(MIXES),
    ]
    for size in COALITION_SIZES:
        cells = []
        for mix in MIXES:
            at = [r for r in results if r["size"] == size and r["mix"] == mix]
            named = [r["guilty_named"] for r in at]
            cells.append(f"{min(named)} / {statistics.median(named):g} accused, "
                         f"{sum(r['innocents_named'] for r in at)} innocents "
                         f"({statistics.median([r['psnr'] for r in at]):.1f} dB)")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    innocents = sum(r["innocents_named"] for r in results)
    none = sum(r["guilty_named"] == 0 for r in results)
    lines += ["", f"Innocents named over all {len(results)} coalition trials: {innocents}; "
              f"trials in which no colluder was named: {none} (by size: "
              + ", ".join(f"{s}: {sum(r['guilty_named'] == 0 for r in results if r['size'] == s)}"
                          for s in COALITION_SIZES)
              + "). The dB figure is the forged copy's median PSNR against the master.", ""]
    return lines


def _false(raw: dict[str, Any]) -> list[str]:
    results = raw["false"]
    setup = raw["setup"]
    kinds = list(dict.fromkeys(r["kind"] for r in results))
    worst = max(results, key=lambda r: r["top"] - r["threshold"])
    highest = max(results, key=lambda r: r["top"])
    lines = [
        "### Security (3): false accusations",
        "",
        f"{len(results):,} checks in 2 processes: 256 x 256 crops of the photographs "
        f"({setup['crops_per_photo']} per photograph, each sealed under its own key with "
        f"{ISSUED:,} issued licences); each check is an unmarked crop (the master) or the "
        "copy of a licence outside the issued set, under one attack of the table drawn at "
        f"random, checked with `accuse` against the {ISSUED:,} issued.",
        "",
        "| suspect | checks | innocents named (target 0) | largest score: median, max | "
        "threshold: min-max |",
        "|---|---|---|---|---|",
    ]
    for kind in kinds:
        at = [r for r in results if r["kind"] == kind]
        lines.append(f"| {kind} | {len(at):,} | {sum(r['named'] for r in at)} | "
                     f"{statistics.median([r['top'] for r in at]):.2f}, "
                     f"{max(r['top'] for r in at):.2f} | "
                     f"{min(r['threshold'] for r in at):.2f}-"
                     f"{max(r['threshold'] for r in at):.2f} |")
    lines += [
        "",
        f"Innocents named: {sum(r['named'] for r in results)} of "
        f"{len(results) * ISSUED:,} licence checks. The closest call: score {worst['top']:.2f} "
        f"against a threshold of {worst['threshold']:.2f} ({worst['kind']}, "
        f"{worst['row']}, {worst['work']}); the smallest bound `accuse` gave a top innocent "
        f"was {min(r['bound'] for r in results):.1e}. The largest innocent score: "
        f"{highest['top']:.2f} against that check's threshold of {highest['threshold']:.2f} "
        f"({highest['kind']}, {highest['row']}, {highest['work']}); the threshold is "
        "computed for each suspect's evidence, and rises where the evidence is degenerate "
        "(an unmarked master barely changed leaves almost no residual).",
        "",
    ]
    return lines


def _cost(raw: dict[str, Any]) -> list[str]:
    c = raw["cost"]
    photos = c["photos"]
    rounds = raw["setup"]["rounds"]
    piece = 1 << 20

    def ordinary(size: int) -> int:
        return size + 16 * -(-size // piece)

    lines = [
        "### Cost",
        "",
        f"Per photograph, {rounds} rounds in one process with nothing else of the run "
        "beside it; times are medians (min-max) of the rounds, whole calls from bytes to "
        "bytes (`seal_image`, `personal_table`, `unseal` with the PNG encode, and the "
        "present mark's `embed_bytes`, which includes its self-check). Ciphertext: "
        "the ordinary one is the master plus 16 bytes per 1 MiB piece; the sealed one is "
        "the container plus the same.",
        "",
        "| photograph | MP | master PNG, bytes | sealed / ordinary ciphertext | table per "
        "buyer, bytes | seal, ms | table, ms | unseal, ms | embed_bytes, ms | unseal / "
        "embed_bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in photos:
        t = p["times"]
        lines.append(
            f"| {p['name']} | {p['megapixels']:.2f} | {p['master']:,} | "
            f"{ordinary(p['container']) / ordinary(p['master']):.2f} | {p['table']:,} | "
            + " | ".join(_spread([1000 * v for v in t[k]]) for k in
                         ("seal", "table", "unseal", "embed"))
            + f" | {_spread(p['unseal_over_embed'], '', 2)} |")
    per_mp = {k: [statistics.median(p["times"][k]) * 1000 / p["megapixels"] for p in photos]
              for k in ("seal", "unseal", "embed")}
    ratios = [statistics.median(p["unseal_over_embed"]) for p in photos]
    sizes = [ordinary(p["container"]) / ordinary(p["master"]) for p in photos]
    lines += [
        "",
        f"Over the photographs (medians of the per-photograph medians): sealed ciphertext "
        f"{statistics.median(sizes):.2f} x the ordinary one ({min(sizes):.2f}-{max(sizes):.2f}); "
        f"seal {statistics.median(per_mp['seal']):.0f} ms/MP, unseal "
        f"{statistics.median(per_mp['unseal']):.0f} ms/MP, embed_bytes "
        f"{statistics.median(per_mp['embed']):.0f} ms/MP; unseal / embed_bytes "
        f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}).",
    ]
    if c["jpegs"]:
        lines += [
            "",
            "Masters that ship as camera JPEGs (scikit-image's own files, sealed as they "
            "are; the container keeps the full pixels, so it is measured against the JPEG): "
            + "; ".join(f"{j['name']} {j['master']:,} bytes, container {j['container']:,} "
                        f"({ordinary(j['container']) / ordinary(j['master']):.1f} x), "
                        f"unsealed JPEG copy {j['copy']:,}, table {j['table']:,}"
                        for j in c["jpegs"]) + ".",
        ]
    m = c["million"]
    lines += [
        "",
        f"Detection against {m['licences']:,} issued licences ({m['photo']}, a buyer's "
        "copy): registration and evidence (`accuse` with no licence to score: the two "
        f"images decoded, registered, the evidence and its bound) "
        f"{_spread(m['evidence_s'], ' s', 2)}; scoring every licence (`tardos.scores`, the "
        f"codewords drawn again from the payloads) {_spread(m['scores_s'], ' s', 1)}; the "
        f"threshold for that many licences {_spread(m['threshold_s'], ' s', 2)}; "
        f"medians (min-max) of {len(m['scores_s'])} rounds, one thread. The buyer alone "
        f"was named: {'yes' if m['named_is_buyer'] else 'NO (' + str(m['named']) + ' named)'}.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: two small photographs, fewer trials (< 3 minutes)")
    parser.add_argument("--out", type=Path, help="write the section here, not to "
                        "docs/BENCHMARKS.md")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only write the section again from a run's raw figures")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python -m benchmarks.sealed.run", *sys.argv[1:]])
    if args.render:
        raw = json.loads(args.render.read_text())
        command = raw.get("command", command)
    else:
        target = RAW.with_name("sealed-quick.json") if args.quick else RAW
        raw = run(QUICK if args.quick else FULL, target, command)
        print(f"raw figures: {target}", file=sys.stderr)
    body = render(raw, command)
    print(body)
    if args.out:
        args.out.write_text("## Sealed delivery\n\n" + body + "\n")
    elif not raw["setup"]["quick"]:
        write_section("Sealed delivery", "\n" + body)


if __name__ == "__main__":
    main()
