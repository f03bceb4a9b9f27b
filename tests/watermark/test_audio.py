"""The audio mark: round trips, what it must not do to the sound, excerpts, speed, and
the answers it gives for audio it cannot or should not mark.

Generated clips keep these fast (tests/watermark/audio_clips.py); the benchmark runs the
attack table on real recordings. Expected values are the payloads put in and the limits
the issue sets (SNR at least 30 dB), not anything the mark computes about itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.watermark.audio_clips import RATE, music, speech_like
from watermark.audio import embed, extract
from watermark.audio.layout import audio_layout
from watermark.audio.params import PERIOD_STEPS
from watermark.audio.spectrum import (
    add_modification,
    band_split,
    frame_spectra,
    half_band_power,
    power_prefix,
)
from watermark.audio.statistic import class_weighted, interpolation_residual, soft_values
from watermark.errors import (
    AudioTooShortError,
    EmbedCheckError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedAudioError,
)
from watermark.payload import codeword, decode

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))
PAYLOAD = 0xFEEDFACE12345678


def _snr_db(original: np.ndarray, copy: np.ndarray) -> float:
    a, b = original.astype(np.float64), copy.astype(np.float64)
    return float(10 * np.log10(np.sum(a**2) / np.sum((b - a) ** 2)))


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return music(16.0)


@pytest.fixture(scope="module")
def marked(song: np.ndarray) -> np.ndarray:
    return embed(song, RATE, KEY, PAYLOAD)


def test_a_marked_song_gives_back_its_payload_and_stays_above_30_db(song, marked) -> None:
    assert marked.shape == song.shape
    assert marked.dtype == song.dtype
    assert min(_snr_db(song[:, c], marked[:, c]) for c in range(2)) >= 30.0
    result = extract(marked, RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert result.speed == 1.0
    assert not result.informed


def test_marking_is_deterministic(song, marked) -> None:
    assert embed(song, RATE, KEY, PAYLOAD).tobytes() == marked.tobytes()


def test_unmarked_audio_and_another_key_read_as_no_mark(song, marked) -> None:
    for samples, key in ((song, KEY), (marked, OTHER_KEY)):
        result = extract(samples, RATE, key)
        assert (result.found, result.payload) == (False, None)


def test_an_excerpt_at_any_offset_carries_the_mark(marked) -> None:
    excerpt = marked[int(2.37 * RATE): int(12.37 * RATE)]  # 10 s, off every frame boundary
    result = extract(excerpt, RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    # the pattern's period is 150 steps of 2048 samples at 44.1 kHz: 6.966 s
    period = 150 * 2048 / RATE
    assert result.offset_seconds == pytest.approx(period * 1 - 2.37, abs=0.03)


@pytest.mark.parametrize("speed", [1.01, 0.99])
def test_a_speed_change_is_found_blind(marked, speed) -> None:
    positions = np.arange(int(marked.shape[0] / speed)) * speed
    changed = np.stack([np.interp(positions, np.arange(marked.shape[0]), marked[:, c])
                        for c in range(2)], axis=1).astype(np.float32)
    result = extract(changed, RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
    assert result.speed == pytest.approx(speed, abs=0.0025)


def test_the_mono_downmix_of_a_marked_stereo_copy_carries_the_mark(marked) -> None:
    result = extract(marked.mean(axis=1), RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)


def test_an_informed_read_subtracts_the_master(song, marked) -> None:
    excerpt = marked[int(3.1 * RATE): int(11.1 * RATE)]
    result = extract(excerpt, RATE, KEY, reference=song)
    assert (result.found, result.payload, result.informed) == (True, PAYLOAD, True)
    assert result.bit_errors == 0  # with the music gone, nothing is left to correct
    assert not extract(song[: 9 * RATE], RATE, KEY, reference=song).found


def test_the_fast_analysis_gives_the_plain_short_time_spectrum(song) -> None:
    """The analysis works in chunks of frames and on the bands' bins only (the textbook
    numbers, to rounding), and in float32 for the blind search (within float32's precision
    of each frame's power); compared here with every frame's whole spectrum, frames off
    either end of the clip included."""
    mono = song.astype(np.float64).mean(axis=1)
    length, hop = 2048, 1024
    starts = np.arange(-1, (mono.size - length) // hop + 2) * hop
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length))
    inside = (starts >= 0) & (starts + length <= mono.size)
    frames = np.zeros((starts.size, length))
    frames[inside] = mono[starts[inside, None] + np.arange(length)]
    plain = np.cumsum(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, axis=1)
    split = band_split(length, RATE)
    expected_low = plain[:, split[:, 1] - 1] - plain[:, split[:, 0] - 1]
    expected_high = plain[:, split[:, 2] - 1] - plain[:, split[:, 1] - 1]
    for single, tolerance in ((False, 1e-12), (True, 1e-6)):
        prefix, found_inside = power_prefix(mono, starts, length, bins=int(split[-1, 2]),
                                            single=single)
        assert (found_inside == inside).all()
        low, high = half_band_power(prefix, split)
        for found, expected in ((low, expected_low), (high, expected_high)):
            assert (np.abs(found - expected) <= tolerance * plain[:, -1:]).all()


def test_the_fast_synthesis_adds_the_plain_overlap_added_change(song) -> None:
    """The embedder keeps each frame's spectrum on the marked bins only and synthesises in
    chunks; the textbook way multiplies every frame's whole spectrum and overlap-adds."""
    signal = song[:, 0].astype(np.float64)
    length, hop, frames = 2048, 1024, 300  # more frames than one chunk holds
    split = band_split(length, RATE)
    bins = slice(int(split[0, 0]), int(split[-1, 2]))
    gains = np.random.default_rng(3).uniform(-0.3, 0.3, (frames, bins.stop - bins.start))
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length))
    whole = np.zeros((frames, length // 2 + 1))
    whole[:, bins] = gains
    windowed = signal[np.arange(frames)[:, None] * hop + np.arange(length)] * window
    change = np.fft.irfft(np.fft.rfft(windowed, axis=1) * whole, n=length, axis=1) * window
    expected = signal.copy()
    for frame in range(frames):
        expected[frame * hop: frame * hop + length] += change[frame]
    found = add_modification(signal, frame_spectra(signal, frames, length, bins), gains, bins,
                             length)
    assert np.abs(found - expected).max() < 1e-12
    assert (found[(frames + 1) * hop:] == signal[(frames + 1) * hop:]).all()


def test_16_bit_mono_speech_stays_16_bit_and_mono() -> None:
    voice = (speech_like() * 32767).astype(np.int16)
    copy = embed(voice, RATE, KEY, PAYLOAD)
    assert copy.dtype == np.int16
    assert copy.shape == voice.shape
    assert _snr_db(voice, copy) >= 30.0
    assert extract(copy, RATE, KEY).payload == PAYLOAD


def test_digital_silence_stays_digital_silence(song) -> None:
    gap = song.copy()
    gap[4 * RATE: 7 * RATE] = 0.0
    copy = embed(gap, RATE, KEY, PAYLOAD)
    frame = 2048  # a frame either side of the gap may carry the music's own mark
    assert not copy[4 * RATE + frame: 7 * RATE - frame].any()


def test_a_clip_too_short_names_the_minimum() -> None:
    with pytest.raises(AudioTooShortError, match="at least 8 s"):
        embed(music(5.0), RATE, KEY, PAYLOAD)


def test_a_silent_clip_is_refused_not_delivered_unmarked() -> None:
    with pytest.raises(EmbedCheckError):
        embed(np.zeros((10 * RATE, 2), np.float32), RATE, KEY, PAYLOAD)


@pytest.mark.parametrize(("samples", "rate", "message"), [
    (np.zeros((10 * RATE, 2), np.float32), 8_000, "between 16000 and 192000 Hz"),
    (np.zeros((10 * RATE, 2), np.float32), 44_100.0, "must be an integer"),
    (np.zeros((10 * RATE, 9), np.float32), RATE, "9 channels"),
    (np.zeros((10, 10, 10), np.float32), RATE, "1-D or 2-D"),
    (np.full((10 * RATE,), np.nan, np.float32), RATE, "NaN"),
    (np.zeros((10 * RATE,), np.complex64), RATE, "not audio"),
])
def test_bad_audio_gets_a_clear_error(samples, rate, message) -> None:
    with pytest.raises(UnsupportedAudioError, match=message):
        embed(samples, rate, KEY, PAYLOAD)
    with pytest.raises(UnsupportedAudioError, match=message):
        extract(samples, rate, KEY)


def test_a_bad_key_or_payload_raises() -> None:
    with pytest.raises(InvalidKeyError):
        embed(music(9.0), RATE, b"short", PAYLOAD)
    with pytest.raises(InvalidPayloadError):
        embed(music(9.0), RATE, KEY, 1 << 64)


def test_speech_under_white_noise_at_30_db_still_carries_the_mark() -> None:
    """Noise fills a voice's pauses and the gaps between its formants, where the mark is
    faint; the reader must not count those noise-only cells most (it once did, and read
    nothing here)."""
    voice = speech_like(30.0, seed=14)
    stereo = np.stack([voice, voice], axis=1)
    marked = embed(stereo, RATE, KEY, PAYLOAD).astype(np.float64)
    power = float(np.mean(np.square(marked)))
    noise = np.random.default_rng(3).normal(0, np.sqrt(power / 10**3), marked.shape)
    result = extract((marked + noise).astype(np.float32), RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)


@pytest.mark.parametrize("start", [5.0, 9.0, 11.0, 17.0, 24.5, 29.5])
def test_a_10_s_excerpt_of_speech_carries_the_mark_in_its_pauses(start: float) -> None:
    """In a short excerpt of speech the pauses, room noise the mark rode on, carry much
    of the evidence. A reader that weighted cells by their level above the floor left
    them out and missed 24 of 60 such excerpts of this clip (10 s each, every 0.5 s from
    0 to 29.5 s), these six among them; one that measures which cells carry the mark
    reads them all."""
    voice = _marked_speech()
    excerpt = voice[int(start * RATE): int((start + 10.0) * RATE)]
    result = extract(excerpt, RATE, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)


_SPEECH: dict[str, np.ndarray] = {}


def _marked_speech() -> np.ndarray:
    if "marked" not in _SPEECH:
        voice = speech_like(40.0, seed=13)
        _SPEECH["marked"] = embed(np.stack([voice, voice], axis=1), RATE, KEY, PAYLOAD)
    return _SPEECH["marked"]


def test_the_interpolation_residual_removes_a_glide_and_leaves_noise_alone() -> None:
    """One band wanders slowly (a harmonic gliding across the halves), the other is white
    (room noise); both carry the same fresh sign every step. What the neighbouring steps
    predict is removed from the first, next to nothing from the second."""
    rng = np.random.default_rng(5)
    steps = 600
    marks = rng.choice([-0.2, 0.2], steps)
    glide = np.cumsum(rng.normal(0.0, 0.3, steps))
    white = rng.normal(0.0, 1.0, steps)
    difference = np.stack([glide + marks, white + marks], axis=1)
    residual = interpolation_residual(difference, np.ones(steps, bool))
    centred = difference - difference.mean(axis=0)
    assert np.corrcoef(centred[:, 0], marks)[0, 1] < 0.2
    assert np.corrcoef(residual[:, 0], marks)[0, 1] > 0.3
    assert np.std(residual[:, 1] - centred[:, 1]) < 0.15 * np.std(centred[:, 1])


def test_cells_count_by_the_mark_their_class_shows_on_the_sync_cells() -> None:
    """Two periods of cells: the loud ones (30 dB above their floor) carry the mark under
    unit noise, the quiet ones (at the floor) only noise three times as strong, as in
    speech whose pauses were filled with noise. Counted alike, the quiet cells drown the
    payload; weighted by what their sync cells show, they all but drop out."""
    layout = audio_layout(KEY)
    rng = np.random.default_rng(7)
    steps = 2 * PERIOD_STEPS
    rows = np.arange(steps) % PERIOD_STEPS
    signs = layout.signs(codeword(KEY, PAYLOAD))[rows]
    loud = (np.arange(steps) % 2 == 0)[:, None] & np.ones(signs.shape, bool)
    cells = np.where(loud, 0.4 * signs + rng.normal(0.0, 1.0, signs.shape),
                     rng.normal(0.0, 3.0, signs.shape))
    level = np.where(loud, 30.0, 0.0)
    weighted = class_weighted(cells, level, np.ones(steps, bool), layout, 0)
    gain_loud = np.abs(weighted[loud]).sum() / np.abs(cells[loud]).sum()
    gain_quiet = np.abs(weighted[~loud]).sum() / np.abs(cells[~loud]).sum()
    assert gain_quiet < 0.1 * gain_loud
    assert decode(KEY, soft_values(weighted, layout, 0)).payload == PAYLOAD
    assert decode(KEY, soft_values(cells, layout, 0)).payload is None
