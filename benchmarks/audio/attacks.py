"""The attacks of issue 17's table, each a function of (samples, rng) -> (samples, rate).

Codecs run through maintained libraries only: lameenc (LAME) encodes MP3, soundfile
(libsndfile) decodes MP3 and WAV and encodes and decodes Ogg Vorbis, PyAV (FFmpeg's native
encoder) encodes and decodes AAC. Inputs are float32 (frames, 2) at 44.1 kHz; outputs are
whatever a decoder gives (MP3 at 64 kbit/s comes back at LAME's choice of rate, 24 kHz).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import av
import lameenc
import numpy as np
import soundfile
from numpy.typing import NDArray
from scipy.signal import butter, resample_poly, sosfilt

RATE = 44_100

Audio = NDArray[np.float32]
Attack = Callable[[Audio, np.random.Generator], tuple[Audio, int]]


def _pcm16(samples: Audio) -> NDArray[np.int16]:
    return np.asarray(np.round(np.clip(samples, -1, 1) * 32767), np.int16)


def _float(samples: NDArray[np.floating]) -> Audio:
    return np.ascontiguousarray(samples, np.float32)


def wav16(samples: Audio, rate: int = RATE) -> tuple[Audio, int]:
    buffer = BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    buffer.seek(0)
    out, out_rate = soundfile.read(buffer, dtype="float32", always_2d=True)
    return out, int(out_rate)


def mp3(samples: Audio, kbps: int, rate: int = RATE) -> tuple[Audio, int]:
    """LAME (lameenc) at a constant ``kbps``, quality 2 ("high"), decoded by libsndfile."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(samples.shape[1])
    encoder.set_quality(2)
    data = encoder.encode(_pcm16(samples).tobytes()) + encoder.flush()
    out, out_rate = soundfile.read(BytesIO(bytes(data)), dtype="float32", always_2d=True)
    return out, int(out_rate)


def vorbis(samples: Audio, quality: int, rate: int = RATE) -> tuple[Audio, int]:
    """Ogg Vorbis through libsndfile, whose compression level c sets libvorbis's VBR
    quality to 1 - c (ogg_vorbis.c), on libvorbis's scale of oggenc's -q divided by 10:
    -q 3 is 0.3, so c = 0.7.

    Written a second at a time: libvorbis allocates the whole write on the stack, and one
    write of a minute of stereo crashes the process (libsndfile issue 1095, python-soundfile
    issues 396 and 426)."""
    buffer = BytesIO()
    with soundfile.SoundFile(buffer, "w", rate, samples.shape[1], format="OGG",
                             subtype="VORBIS", compression_level=1 - quality / 10) as out:
        for start in range(0, samples.shape[0], rate):
            out.write(samples[start: start + rate])
    buffer.seek(0)
    out, out_rate = soundfile.read(buffer, dtype="float32", always_2d=True)
    return out, int(out_rate)


def aac(samples: Audio, kbps: int, rate: int = RATE) -> tuple[Audio, int]:
    """FFmpeg's native AAC-LC encoder (PyAV) at ``kbps`` in an ADTS stream, decoded by
    FFmpeg's AAC decoder."""
    buffer = BytesIO()
    with av.open(buffer, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=rate, layout="stereo")
        stream.bit_rate = kbps * 1000
        planar = np.ascontiguousarray(samples.T, np.float32)
        step = 1024 * 16
        for start in range(0, planar.shape[1], step):
            frame = av.AudioFrame.from_ndarray(planar[:, start: start + step], format="fltp",
                                               layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buffer.seek(0)
    chunks = []
    with av.open(buffer, "r", format="adts") as container:
        for frame in container.decode(audio=0):
            out_rate = frame.sample_rate
            chunks.append(frame.to_ndarray())
    decoded = np.concatenate(chunks, axis=1).T
    return _float(decoded), int(out_rate)


def resample_there_and_back(samples: Audio) -> tuple[Audio, int]:
    half = resample_poly(samples.astype(np.float64), 1, 2, axis=0)
    return _float(resample_poly(half, 2, 1, axis=0)), RATE


def gain(samples: Audio, db: float) -> tuple[Audio, int]:
    """Scaled, then clipped to full scale (a +3 dB gain clips the loud peaks)."""
    return _float(np.clip(samples.astype(np.float64) * 10 ** (db / 20), -1, 1)), RATE


def lowpass(samples: Audio, hz: float) -> tuple[Audio, int]:
    """An 8th-order Butterworth low-pass, run forwards (causal, like an equaliser)."""
    sos = butter(8, hz, btype="lowpass", fs=RATE, output="sos")
    return _float(sosfilt(sos, samples.astype(np.float64), axis=0)), RATE


def mono(samples: Audio) -> tuple[Audio, int]:
    return _float(samples.mean(axis=1)), RATE


def noise(samples: Audio, snr_db: float, rng: np.random.Generator) -> tuple[Audio, int]:
    """White Gaussian noise, each channel at ``snr_db`` below that channel's mean power."""
    power = np.mean(np.square(samples.astype(np.float64)), axis=0)
    added = rng.normal(size=samples.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return _float(samples + added), RATE


def excerpt(samples: Audio, seconds: float, rng: np.random.Generator) -> Audio:
    """``seconds`` of the clip at a random offset, to the sample."""
    length = int(seconds * RATE)
    start = int(rng.integers(0, samples.shape[0] - length + 1))
    return samples[start: start + length]


def speed(samples: Audio, factor: float) -> tuple[Audio, int]:
    """Played ``factor`` times as fast, pitch moving with it (a resampling by 100/(100 x
    factor), played back at 44.1 kHz: what a turntable or tape speed change does)."""
    up, down = 100, round(100 * factor)
    return _float(resample_poly(samples.astype(np.float64), up, down, axis=0)), RATE


def combined(samples: Audio, rng: np.random.Generator) -> tuple[Audio, int]:
    """A 20 s excerpt, then MP3 at 128 kbit/s, then -3 dB."""
    decoded, rate = mp3(excerpt(samples, 20.0, rng), 128)
    return _float(decoded * 10 ** (-3 / 20)), rate


#: row name -> (attack, target in percent, audiowmark's figure from issue 17's Anchor)
ATTACKS: dict[str, tuple[Attack, float, str]] = {
    "none": (lambda s, _rng: (s, RATE), 100, "100%"),
    "WAV 16-bit round trip": (lambda s, _rng: wav16(s), 100, "100%"),
    "MP3 128 kbit/s": (lambda s, _rng: mp3(s, 128), 100, "100%"),
    "MP3 64 kbit/s": (lambda s, _rng: mp3(s, 64), 100, "100%"),
    "Ogg Vorbis q3": (lambda s, _rng: vorbis(s, 3), 100, "100%"),
    "AAC 128 kbit/s": (lambda s, _rng: aac(s, 128), 100, "100%"),
    "resample 44.1 -> 22.05 -> 44.1 kHz": (lambda s, _rng: resample_there_and_back(s), 100,
                                           "100%"),
    "gain -6 dB": (lambda s, _rng: gain(s, -6.0), 100, "100%"),
    "gain +3 dB with clipping": (lambda s, _rng: gain(s, 3.0), 100, "100%"),
    "low-pass 8 kHz": (lambda s, _rng: lowpass(s, 8000.0), 100, "100%"),
    "stereo -> mono": (lambda s, _rng: mono(s), 100, "100%"),
    "white noise, 30 dB SNR": (lambda s, r: noise(s, 30.0, r), 99, "94%"),
    "20 s excerpt, random offset": (lambda s, r: (excerpt(s, 20.0, r), RATE), 100, "100%"),
    "10 s excerpt, random offset": (lambda s, r: (excerpt(s, 10.0, r), RATE), 99, "100%"),
    "speed +1% (blind)": (lambda s, _rng: speed(s, 1.01), 99,
                          "defeated; with its speed search on, recovered at ~21 s/min"),
    "speed -1% (blind)": (lambda s, _rng: speed(s, 0.99), 99,
                          "defeated; with its speed search on, recovered at ~21 s/min"),
    "20 s excerpt + MP3 128 + gain -3 dB": (combined, 100, "100%"),
}
