"""Sealed recordings: quality, the container alone, tags, tracing, coalitions, refusals."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
import soundfile
from mutagen.flac import FLAC
from numpy.typing import NDArray

from tests.watermark.audio_clips import RATE, music, speech_like
from tests.watermark.audio_files import ARTIST, TITLE, encoded, mp3_bytes, tagged
from tests.watermark.sealed_copies import KEY, OTHER_KEY, payloads
from watermark.errors import AudioTooShortError, EmbedCheckError, UnsupportedAudioError
from watermark.sealed import (
    SealedFormatError,
    accuse,
    container_info,
    personal_table,
    seal,
    unseal,
)
from watermark.sealed.table import MAGIC

ISSUED = payloads(200, seed=31)


@cache
def master(kind: str) -> bytes:
    """20 s of music: 16-bit WAV or 24-bit FLAC, tagged; or mono speech as 16-bit WAV."""
    if kind == "speech":
        return encoded("WAV", speech_like(20.0))
    fmt = "FLAC" if kind.startswith("FLAC") else "WAV"
    return tagged(fmt, encoded(kind, music(20.0, seed=3)))


def _type(kind: str) -> str:
    return "audio/flac" if kind.startswith("FLAC") else "audio/wav"


@cache
def container(kind: str, key: bytes = KEY) -> bytes:
    return seal(master(kind), _type(kind), key)


@cache
def licensed(kind: str, payload: int, key: bytes = KEY) -> bytes:
    sealed = container(kind, key)
    return unseal(sealed, personal_table(key, payload, container_info(sealed).table_size))


def samples(data: bytes) -> NDArray[np.float64]:
    """Decoded with libsndfile directly, not with the code under test."""
    values, _rate = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return np.asarray(values, np.float64)


def snr(reference: NDArray[np.float64], copy: NDArray[np.float64]) -> float:
    return float(10 * np.log10(np.square(reference).sum() / np.square(reference - copy).sum()))


@pytest.mark.parametrize("kind", ["WAV", "FLAC24", "speech"])
def test_a_licensed_recording_is_close_to_the_master_and_names_its_licence(kind: str) -> None:
    copy = licensed(kind, ISSUED[0])
    # the audio mark's own floor; music lands near 48 dB (its bass carries no mark), speech
    # near 35 dB (its energy sits in the marked band)
    assert snr(samples(master(kind)), samples(copy)) >= 30.0
    result = accuse(copy, master(kind), KEY, ISSUED)
    assert [c.payload for c in result.accused] == [ISSUED[0]]


@pytest.mark.parametrize("kind", ["WAV", "FLAC24"])
def test_the_container_without_a_table_is_noise(kind: str) -> None:
    sealed = container(kind)
    size = container_info(sealed).table_size
    view = unseal(sealed, MAGIC + size.to_bytes(4, "big") + bytes(2 * size))
    assert snr(samples(master(kind)), samples(view)) <= 0.0


def test_a_copy_keeps_the_format_the_depth_and_the_tags() -> None:
    copy = licensed("FLAC24", ISSUED[1])
    info = soundfile.info(io.BytesIO(copy))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "FLAC", "PCM_24", RATE, 2)
    tags = FLAC(io.BytesIO(copy))
    assert tags["title"] == [TITLE]
    assert tags["artist"] == [ARTIST]
    assert len(tags.pictures) == 1
    wav = licensed("WAV", ISSUED[1])
    assert soundfile.info(io.BytesIO(wav)).subtype == "PCM_16"
    assert TITLE.encode() in wav


def test_unsealing_is_deterministic() -> None:
    sealed = container("WAV")
    table = personal_table(KEY, 5, container_info(sealed).table_size)
    assert unseal(sealed, table) == unseal(sealed, table)
    assert seal(master("WAV"), "audio/wav", KEY) == sealed


def _as_file(values: NDArray[np.float64], kind: str = "WAV") -> bytes:
    return encoded(kind, values.astype(np.float32))


@pytest.mark.parametrize("attack", ["mp3-128", "excerpt-10s", "quieter", "faster"])
def test_a_processed_copy_still_names_its_licence(attack: str) -> None:
    values = samples(licensed("WAV", ISSUED[2]))
    if attack == "mp3-128":
        suspect = mp3_bytes(values.astype(np.float32), RATE, 128)
    elif attack == "excerpt-10s":
        suspect = _as_file(values[3 * RATE : 13 * RATE])
    elif attack == "quieter":
        suspect = _as_file(values * 0.5)
    else:  # played 1% fast, pitch with it: every 101st sample dropped, by interpolation
        positions = np.arange(int(values.shape[0] / 1.01)) * 1.01
        faster = np.stack([np.interp(positions, np.arange(values.shape[0]), channel)
                           for channel in values.T], axis=1)
        suspect = _as_file(faster)
    named = [c.payload for c in accuse(suspect, master("WAV"), KEY, ISSUED).accused]
    assert named == [ISSUED[2]]


@pytest.mark.parametrize("size", [2, 3, 5])
def test_averaged_recordings_name_a_colluder_and_never_an_innocent(size: int) -> None:
    coalition = ISSUED[10 : 10 + size]
    mean = np.mean([samples(licensed("WAV", p)) for p in coalition], axis=0)
    named = {c.payload for c in accuse(_as_file(mean), master("WAV"), KEY, ISSUED).accused}
    assert named
    assert named <= set(coalition)


def test_unmarked_and_other_key_recordings_name_nobody() -> None:
    assert accuse(master("WAV"), master("WAV"), KEY, ISSUED).accused == ()
    other = licensed("WAV", ISSUED[0], OTHER_KEY)
    assert accuse(other, master("WAV"), KEY, ISSUED).accused == ()
    outsider = licensed("WAV", 0xFEED)
    assert accuse(outsider, master("WAV"), KEY, ISSUED).accused == ()


@pytest.mark.parametrize(("data", "error"), [
    (lambda: encoded("OGG", music(8.0)), UnsupportedAudioError),
    (lambda: mp3_bytes(music(20.0, seed=5), RATE, 32), EmbedCheckError),  # mark stripped
    (lambda: encoded("WAV", music(3.0)), AudioTooShortError),
    (lambda: encoded("WAV", np.zeros((RATE * 8, 2), np.float32)), EmbedCheckError),
])
def test_what_cannot_be_sealed_is_refused(data: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        seal(data(), "audio/wav", KEY)  # type: ignore[operator]


def test_a_type_that_is_never_sealed_is_refused() -> None:
    with pytest.raises(SealedFormatError):
        seal(b"%PDF-1.7", "application/pdf", KEY)


@pytest.mark.parametrize("damage", ["truncated", "trailing", "magic", "wrong-table"])
def test_a_damaged_sealed_recording_is_refused(damage: str) -> None:
    sealed = container("WAV")
    table = personal_table(KEY, 1, container_info(sealed).table_size)
    if damage == "truncated":
        sealed = sealed[:-50]
    elif damage == "trailing":
        sealed = sealed + b"\0"
    elif damage == "magic":
        sealed = b"PMSEALA9" + sealed[8:]
    else:
        table = personal_table(KEY, 1, 2 * container_info(sealed).table_size)
    with pytest.raises(SealedFormatError):
        unseal(sealed, table)


def test_an_mp3_master_is_sealed_reencoded_at_its_bitrate_with_its_tags_and_traced() -> None:
    from mutagen.id3 import ID3

    mp3 = tagged("MP3", encoded("MP3", music(20.0, seed=5)))
    sealed = seal(mp3, "audio/mpeg", KEY)
    assert container_info(sealed).content_type == "audio/mpeg"
    copy = unseal(sealed, personal_table(KEY, ISSUED[3], container_info(sealed).table_size))
    assert copy[:3] == b"ID3"
    assert str(ID3(io.BytesIO(copy))["TIT2"]) == TITLE
    assert [c.payload for c in accuse(copy, mp3, KEY, ISSUED).accused] == [ISSUED[3]]
