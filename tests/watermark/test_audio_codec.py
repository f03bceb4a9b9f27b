"""Audio files in, audio files out: the format, rate, channels, length and tags a copy
keeps, the same bytes in every process, and the refusals for files it must not mark.

Expected values are what the masters were written with (tests/watermark/audio_files.py)
and the payload put in; tags and formats are read back with soundfile and mutagen, not
with the codec under test.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.oggvorbis import OggVorbis

from tests.watermark.audio_clips import RATE, music
from tests.watermark.audio_files import (
    ARTIST,
    TITLE,
    cover_png,
    encoded,
    mp3_bytes,
    song_file,
    tagged,
    vibe_ace,
)
from watermark.audio.codec import MAX_SECONDS, decode_audio, embed_audio_bytes, extract_audio_bytes
from watermark.errors import (
    AudioTooLargeError,
    AudioTooShortError,
    CorruptAudioError,
    EmbedCheckError,
    UnsupportedAudioError,
)

KEY = bytes(range(32))
PAYLOAD = 0x5EED_1E55_0DD5_0B0E
KINDS = ["WAV", "WAV24", "FLAC", "FLAC24", "OGG", "MP3"]
MAGIC = {"WAV": b"RIFF", "WAV24": b"RIFF", "FLAC": b"fLaC", "FLAC24": b"fLaC",
         "OGG": b"OggS", "MP3": b"ID3"}
SECONDS = 10.0
#: a lossy codec's priming and padding: each LAME generation adds its encoder delay (1105
#: samples) and pads to whole 1152-sample frames, and the MP3 master already carries one
#: generation, so the copy may be up to 0.2 s longer than the clip
PADDING_SECONDS = 0.2


@pytest.fixture(scope="module")
def masters() -> dict[str, bytes]:
    return {kind: tagged(kind, song_file(kind, SECONDS)) for kind in KINDS}


@pytest.fixture(scope="module")
def copies(masters: dict[str, bytes]) -> dict[str, bytes]:
    return {kind: embed_audio_bytes(master, KEY, PAYLOAD) for kind, master in masters.items()}


def _snr_db(original: np.ndarray, copy: np.ndarray) -> float:
    a, b = original.astype(np.float64), copy.astype(np.float64)
    return float(10 * np.log10(np.sum(a**2) / np.sum((b - a) ** 2)))


@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_keeps_the_format_rate_channels_and_length_and_carries_the_payload(
    kind: str, masters: dict[str, bytes], copies: dict[str, bytes]
) -> None:
    copy = copies[kind]
    assert copy.startswith(MAGIC[kind])
    assert copy != masters[kind]
    info = soundfile.info(io.BytesIO(copy))
    assert (info.samplerate, info.channels) == (RATE, 2)
    if kind in ("MP3", "OGG"):
        assert SECONDS <= info.duration <= SECONDS + PADDING_SECONDS
    else:  # lossless: the same samples count, at the master's bit depth
        assert info.frames == int(SECONDS * RATE)
        assert info.subtype == ("PCM_24" if kind.endswith("24") else "PCM_16")
        original, _ = soundfile.read(io.BytesIO(masters[kind]))
        marked, _ = soundfile.read(io.BytesIO(copy))
        assert min(_snr_db(original[:, c], marked[:, c]) for c in range(2)) >= 30.0
    result = extract_audio_bytes(copy, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)


def test_an_mp3_copy_keeps_the_masters_bitrate(copies: dict[str, bytes]) -> None:
    from mutagen.mp3 import MP3

    info = MP3(io.BytesIO(copies["MP3"])).info
    assert (info.bitrate, info.sample_rate, info.channels) == (128_000, RATE, 2)


@pytest.mark.parametrize("kind", ["FLAC", "MP3"])
def test_an_informed_read_with_the_master_gives_the_payload(
    kind: str, masters: dict[str, bytes], copies: dict[str, bytes]
) -> None:
    # A whole MP3 copy is longer than its MP3 master and starts before it (the decoder
    # gives the second encoding's priming first): the read must still place it.
    result = extract_audio_bytes(copies[kind], KEY, reference=masters[kind])
    assert (result.found, result.payload, result.informed) == (True, PAYLOAD, True)


def test_an_informed_read_of_the_opening_of_an_mp3_copy(
    masters: dict[str, bytes], copies: dict[str, bytes]
) -> None:
    """The copy's first seconds, priming and all, start before the master's first."""
    copy = decode_audio(copies["MP3"])
    opening = mp3_bytes(copy.samples[: 9 * RATE])
    result = extract_audio_bytes(opening, KEY, reference=masters["MP3"])
    assert (result.found, result.payload) == (True, PAYLOAD)


@pytest.mark.parametrize("kind", ["MP3", "FLAC", "OGG"])
def test_tags_and_cover_art_are_kept(kind: str, copies: dict[str, bytes]) -> None:
    copy = io.BytesIO(copies[kind])
    if kind == "MP3":
        tags = ID3(copy)
        assert (str(tags["TIT2"]), str(tags["TPE1"])) == (TITLE, ARTIST)
        assert tags.getall("APIC")[0].data == cover_png()
        assert tags.version[:2] == (2, 3)
        return
    file = FLAC(copy) if kind == "FLAC" else OggVorbis(copy)
    assert (file["title"], file["artist"]) == ([TITLE], [ARTIST])
    if kind == "FLAC":
        assert [p.data for p in file.pictures] == [cover_png()]
    else:
        picture = Picture(base64.b64decode(file["metadata_block_picture"][0]))
        assert (picture.mime, picture.data) == ("image/png", cover_png())


def test_a_wav_keeps_its_info_chunk(copies: dict[str, bytes]) -> None:
    with soundfile.SoundFile(io.BytesIO(copies["WAV"])) as wav:
        assert (wav.title, wav.artist) == (TITLE, ARTIST)


_HASHES = """
import hashlib, json, sys
from tests.watermark.audio_files import song_file, tagged
from watermark.audio.codec import embed_audio_bytes
print(json.dumps({kind: hashlib.sha256(embed_audio_bytes(tagged(kind, song_file(kind, 10.0)),
                                                          bytes(range(32)), %d)).hexdigest()
                  for kind in %r}))
"""


def test_copies_are_byte_identical_across_processes_and_time(copies: dict[str, bytes]) -> None:
    root = Path(__file__).resolve().parents[2]
    script = _HASHES % (PAYLOAD, KINDS)
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                              capture_output=True, text=True, timeout=120)
        runs.append(json.loads(done.stdout))
        time.sleep(1.1)  # a timestamp written into a header would show
    here = {kind: hashlib.sha256(copy).hexdigest() for kind, copy in copies.items()}
    assert runs[0] == runs[1] == here


# -- refusals --------------------------------------------------------------------------

def _wav_header(*, channels: int = 2, rate: int = RATE, frames: int = 1000) -> bytes:
    block = channels * 2
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
           + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
           + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little")
           + (16).to_bytes(2, "little"))
    size = frames * block
    body = b"WAVE" + fmt + b"data" + size.to_bytes(4, "little") + bytes(min(size, 4096))
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + body


@pytest.mark.parametrize("kind", ["WAV", "FLAC", "OGG", "MP3"])
def test_a_truncated_file_is_refused_as_corrupt(kind: str) -> None:
    whole = song_file(kind, SECONDS)
    with pytest.raises(CorruptAudioError):
        embed_audio_bytes(whole[: len(whole) * 6 // 10 + 1], KEY, PAYLOAD)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"", CorruptAudioError, id="empty"),
        pytest.param(np.random.default_rng(5).bytes(50_000), UnsupportedAudioError,
                     id="random bytes"),
        pytest.param(b"%PDF-1.7\n" + bytes(1000), UnsupportedAudioError, id="a PDF"),
        pytest.param(_wav_header(channels=1, frames=10**9), AudioTooLargeError,
                     id="a WAV header claiming 10^9 frames"),
        pytest.param(_wav_header(channels=100), AudioTooLargeError, id="100 channels"),
        pytest.param(_wav_header(rate=1), UnsupportedAudioError, id="1 Hz"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(data: bytes, error: type) -> None:
    with pytest.raises(error) as raised:
        embed_audio_bytes(data, KEY, PAYLOAD)
    assert str(raised.value)


def test_a_one_hertz_rate_names_the_range() -> None:
    with pytest.raises(UnsupportedAudioError, match="between 16000 and 192000 Hz"):
        decode_audio(_wav_header(rate=1))


def test_a_header_claiming_hours_is_refused_before_decoding() -> None:
    # 10^9 frames of mono claimed, 4 KiB there: the limit answers, not the truncation
    with pytest.raises(AudioTooLargeError, match=f"at most {MAX_SECONDS // 60} minutes"):
        decode_audio(_wav_header(channels=1, frames=10**9))


def test_an_ogg_opus_stream_is_not_taken_for_vorbis() -> None:
    out = io.BytesIO()
    soundfile.write(out, music(2.0), 48_000, format="OGG", subtype="OPUS")
    with pytest.raises(UnsupportedAudioError, match="not Vorbis"):
        decode_audio(out.getvalue())


def test_a_clip_too_short_for_the_mark_names_the_minimum() -> None:
    with pytest.raises(AudioTooShortError, match="at least 8 s"):
        embed_audio_bytes(encoded("WAV", music(3.0)), KEY, PAYLOAD)


def test_digital_silence_is_refused_and_never_written() -> None:
    silence = encoded("FLAC", np.zeros((int(SECONDS * RATE), 2), np.float32))
    with pytest.raises((EmbedCheckError, UnsupportedAudioError)):
        embed_audio_bytes(silence, KEY, PAYLOAD)


def test_a_flac_with_damaged_samples_is_refused() -> None:
    whole = bytearray(song_file("FLAC", SECONDS))
    middle = len(whole) // 2
    whole[middle:middle + 64] = bytes(64)  # a damaged frame: the stream MD5 no longer holds
    with pytest.raises(CorruptAudioError):
        decode_audio(bytes(whole))


# -- a real recording ------------------------------------------------------------------

def test_a_real_ogg_recording_keeps_its_quality_and_cover_and_carries_the_payload() -> None:
    master = vibe_ace()
    if master is None:
        pytest.skip("librosa 0.7.2's source archive (the real recording) is not available")
    copy = embed_audio_bytes(master, KEY, PAYLOAD)
    source, marked = OggVorbis(io.BytesIO(master)), OggVorbis(io.BytesIO(copy))
    assert (marked.info.sample_rate, marked.info.channels) == (44_100, 2)
    assert marked.info.length == pytest.approx(61.46, abs=0.1)
    assert marked.info.bitrate == source.info.bitrate == 224_000  # Vorbis quality 7
    assert marked["title"] == ["Vibe Ace"]
    assert marked["metadata_block_picture"] == source["metadata_block_picture"]
    result = extract_audio_bytes(copy, KEY)
    assert (result.found, result.payload) == (True, PAYLOAD)
