"""The video benchmark's clips, built once and kept in benchmarks/.work/video/ (git-ignored).

What each clip is and why: tests/watermark/video_clips.py (BENCHMARK, and SPEED below).
The files are cached because libx264 gives slightly different bytes from run to run for
the same frames: every run after the first marks the very same masters.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.watermark.video_clips import (
    BENCHMARK,
    REAL_KINDS,
    Clip,
    benchmark_specs,
    make,
)

WORK = ROOT / "benchmarks" / ".work" / "video"

Spec = tuple[str, int, int, int, float, str, int]

#: the speed row's clip: real material at 1080p30, H.264 (the issue's reference case)
SPEED: Spec = ("ken_burns", 1920, 1080, 30, 10.0, "mp4", 21)
SPEED_QUICK: Spec = ("ken_burns", 1920, 1080, 30, 4.0, "mp4", 21)

#: --quick: one real clip and the adversarial flat one, both 360p
QUICK = [spec for spec in BENCHMARK if spec[0] in ("footage", "flat")]


def _name(spec: Spec) -> str:
    kind, _width, height, fps, seconds, container, _seed = spec
    return f"{kind}_{height}p{fps}_{seconds:g}s_{container}"


def clip(spec: Spec) -> Clip:
    """The clip of `spec`, from the cache or built (and cached)."""
    kind, width, height, fps, seconds, container, seed = spec
    tag = hashlib.sha256(repr(spec).encode()).hexdigest()[:10]
    path = WORK / f"{_name(spec)}-{tag}.{container}"
    meta = path.with_suffix(path.suffix + ".soundtrack")
    if path.exists() and meta.exists():
        return Clip(_name(spec), kind, container, width, height, fps,  # type: ignore[arg-type]
                    seconds, seed, path.read_bytes(), kind in REAL_KINDS,
                    meta.read_text().strip())
    built = make(kind, width=width, height=height, fps=fps, seconds=seconds,
                 container=container, seed=seed, name=_name(spec))  # type: ignore[arg-type]
    WORK.mkdir(parents=True, exist_ok=True)
    path.write_bytes(built.data)
    meta.write_text(built.soundtrack + "\n")
    return built


def corpus(*, quick: bool = False) -> list[Clip]:
    specs = [spec for spec in benchmark_specs() if not quick or spec in QUICK]
    return [clip(spec) for spec in specs]  # type: ignore[arg-type]


if __name__ == "__main__":
    import time

    for spec in [*benchmark_specs(), SPEED, SPEED_QUICK]:
        start = time.perf_counter()
        made = clip(spec)  # type: ignore[arg-type]
        print(f"{made.name}: {len(made.data) / 1e6:.2f} MB, {made.soundtrack}, "
              f"{time.perf_counter() - start:.1f} s", flush=True)
