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
from watermark.errors import (
    AudioTooShortError,
    EmbedCheckError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedAudioError,
)

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
