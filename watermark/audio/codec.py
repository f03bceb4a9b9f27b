"""Audio files, bytes in and bytes out: what the agent calls on a decrypted WAV, FLAC,
Ogg Vorbis or MP3, with safe limits.

Decoding is where untrusted input meets C libraries, so it is fenced. The format is
sniffed from the bytes, never from a name, and only the four formats are parsed at all
(an Ogg stream must be Vorbis; an MPEG stream must be Layer III). Each file's own
structure is read before any sample is decoded: the WAV chunk list, the FLAC stream
info, every Ogg page (with its checksum), every MPEG frame header. That gives the rate,
channels and length, checked against the limits below (`AudioTooLargeError`,
`UnsupportedAudioError`), and finds a file that stops halfway (`CorruptAudioError`).
After decoding, the sample count must be what the header said, and a FLAC's samples must
match the MD5 its stream info carries, so damage is refused rather than marked.

What is streamed and what is not: the mark needs the whole signal at once (its pattern
repeats over the clip and its noise budget is measured on the whole copy), so the
samples are held in memory, in the master's own sample type, at most `MAX_SAMPLES`
(20 minutes of 48 kHz stereo: 460 MB as 32-bit samples, about three times that while
marking). The header checks read no samples, so an oversized file costs nothing to
refuse; a WAV's samples are viewed in place rather than copied; nothing else is streamed.

Encoding keeps the master's format and its tags, and is byte-identical for a given
(master, key, payload, library versions), because the platform's audit recomputes copies:
- WAV: the master's own bytes with only the sample data replaced, at its bit depth
  (8, 16, 24 or 32-bit integer, 32 or 64-bit float); every other chunk (LIST/INFO, id3,
  bext, cue) is kept as it is, except PEAK, which describes the old samples.
- FLAC: libsndfile (libFLAC) at the master's bit depth, lossless; the Vorbis comments
  and picture blocks are copied with mutagen.
- Ogg Vorbis: libsndfile (libvorbis) at the Vorbis quality whose nominal bitrate is
  nearest the master's; comments (METADATA_BLOCK_PICTURE too) copied with mutagen;
  every page gets the master's stream serial, since libsndfile draws a random one.
- MP3: LAME (`lameenc`) at the master's bitrate, constant; a VBR master's average is
  taken to the nearest standard bitrate. The ID3v2 tag (pictures too) is copied with
  mutagen, and an ID3v1 tag if the master had one.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from watermark.audio.embed import embed
from watermark.audio.extract import extract
from watermark.audio.params import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from watermark.errors import AudioTooLargeError, CorruptAudioError, UnsupportedAudioError
from watermark.result import ExtractResult

FORMATS: Final = ("WAV", "FLAC", "OGG", "MP3")
MAX_SECONDS: Final = 20 * 60
"""Longest audio marked or read: an album side, a long mix; a copy is held in memory."""
MAX_SAMPLES: Final = MAX_SECONDS * 48_000 * 2
"""At most this many samples (frames x channels): 20 minutes of 48 kHz stereo."""

MP3_BITRATES: Final = {
    1: (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
"""The standard Layer III bitrates in kbit/s: MPEG-1 (32-48 kHz), MPEG-2 (16-24 kHz)."""

VORBIS_NOMINAL_KBPS: Final = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 500)
"""libvorbis's nominal bitrate for 44.1 kHz stereo at quality 0, 1, ... 10."""

VORBIS_BLOCK_FRAMES: Final = 1 << 16

_WAV_SUBTYPES: Final = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24",
                        (1, 32): "PCM_32", (3, 32): "FLOAT", (3, 64): "DOUBLE"}
_FLAC_SUBTYPES: Final = {"PCM_S8": 8, "PCM_16": 16, "PCM_24": 24}


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded file: samples (frames, channels) in the type that holds them exactly
    (int16 for 8 and 16-bit PCM, int32 for 24 and 32-bit PCM left-aligned, float32 for
    float WAV and for the lossy formats, float64 for 64-bit float WAV)."""

    samples: NDArray[np.generic]
    sample_rate: int
    format: str
    subtype: str
    bitrate_kbps: int | None = None
    """An MP3's bitrate (its mean over the frames for VBR); an Ogg's nominal bitrate."""

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[0]) / self.sample_rate


def _mutagen(module: str) -> Any:
    """A mutagen module, loaded on first use; typed as Any since mutagen's API is untyped
    (its public classes and functions only: FLAC, OggVorbis, OggPage, ID3)."""
    return importlib.import_module(f"mutagen.{module}")


# -- sniffing and limits ---------------------------------------------------------------

def sniff_audio(data: bytes) -> str:
    """The format of `data` (one of `FORMATS`), from its bytes alone."""
    if len(data) == 0:
        raise CorruptAudioError("no audio data")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"OggS":
        return "OGG"
    start = _mpeg_start(data)
    if start is not None and _mpeg_header(data, start) is not None:
        return "MP3"
    raise UnsupportedAudioError("not a WAV, FLAC, Ogg Vorbis or MP3 file")


def _check_limits(rate: int, channels: int, frames: int, what: str) -> None:
    if channels < 1:
        raise CorruptAudioError(f"the {what} header gives no channels")
    if channels > MAX_CHANNELS:
        raise AudioTooLargeError(f"the {what} has {channels} channels; at most "
                                 f"{MAX_CHANNELS} are marked")
    if rate > MAX_SAMPLE_RATE:
        raise AudioTooLargeError(f"the {what} is sampled at {rate} Hz; at most "
                                 f"{MAX_SAMPLE_RATE} Hz is marked")
    if rate < MIN_SAMPLE_RATE:
        raise UnsupportedAudioError(f"the {what} is sampled at {rate} Hz; the rate must be "
                                    f"between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz")
    if frames > MAX_SECONDS * rate or frames * channels > MAX_SAMPLES:
        raise AudioTooLargeError(
            f"the {what} holds {frames / rate / 60:.1f} minutes of {channels}-channel audio;"
            f" at most {MAX_SECONDS // 60} minutes and {MAX_SAMPLES:,} samples are marked")


# -- WAV: the chunk list, read here; samples viewed in place ---------------------------

@dataclass(frozen=True)
class _Wav:
    format_tag: int
    channels: int
    rate: int
    bits: int
    data_start: int
    data_end: int


def _wav_layout(data: bytes) -> _Wav:
    position, fmt, found = 12, None, None
    while position + 8 <= len(data):
        tag = data[position:position + 4]
        size = int.from_bytes(data[position + 4:position + 8], "little")
        body = position + 8
        if tag == b"fmt " and size >= 16 and body + size <= len(data):
            fmt = data[body:body + size]
        elif tag == b"data":
            found = (body, body + size)
            break
        position = body + size + (size & 1)
    if fmt is None or found is None:
        raise CorruptAudioError("the WAV file has no format or no data chunk")
    format_tag = int.from_bytes(fmt[0:2], "little")
    channels = int.from_bytes(fmt[2:4], "little")
    rate = int.from_bytes(fmt[4:8], "little")
    block = int.from_bytes(fmt[12:14], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if format_tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format
        format_tag = int.from_bytes(fmt[24:26], "little")
    if (format_tag, bits) not in _WAV_SUBTYPES or block != channels * bits // 8:
        raise UnsupportedAudioError(
            f"WAV encoding {format_tag} with {bits}-bit samples cannot be marked "
            "(integer PCM of 8 to 32 bits and 32 or 64-bit float can)")
    frames = (found[1] - found[0]) // block if block else 0
    _check_limits(rate, channels, frames, "WAV file")
    if found[1] > len(data):
        raise CorruptAudioError(f"the WAV file is truncated: its data chunk claims "
                                f"{found[1] - found[0]:,} bytes, {len(data) - found[0]:,} "
                                "are there")
    return _Wav(format_tag, channels, rate, bits, found[0], found[0] + frames * block)


def _wav_samples(data: bytes, wav: _Wav) -> NDArray[np.generic]:
    raw = np.frombuffer(data, np.uint8, wav.data_end - wav.data_start, wav.data_start)
    if wav.bits == 8:  # unsigned, centred on 128
        samples: NDArray[np.generic] = ((raw.astype(np.int16) - 128) << 8)
    elif wav.bits == 24:  # three bytes each, left-aligned in int32
        triples = raw.reshape(-1, 3).astype(np.int32)
        samples = (triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)
    else:
        kind = {(1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
        samples = raw.view(kind[wav.format_tag, wav.bits])
    return samples.reshape(-1, wav.channels)


def _wav_data(samples: NDArray[np.generic], wav: _Wav) -> bytes:
    if wav.bits == 8:
        return (samples.astype(np.int32) // 256 + 128).astype(np.uint8).tobytes()
    if wav.bits == 24:
        value = samples.astype(np.int32).reshape(-1) >> 8
        triples = np.stack([value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF], axis=1)
        return triples.astype(np.uint8).tobytes()
    kind = {(1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
    return samples.astype(kind[wav.format_tag, wav.bits]).tobytes()


def wav_parts(master: bytes) -> tuple[bytes, int, bytes]:
    """A WAV file's bytes before its sample data, the data's length, and the bytes after
    (the chunks a copy keeps; sealed delivery stores these instead of the master)."""
    wav = _wav_layout(master)
    return master[: wav.data_start], wav.data_end - wav.data_start, master[wav.data_end:]


def wav_from_parts(before: bytes, length: int, after: bytes,
                   samples: NDArray[np.generic]) -> bytes:
    """The WAV file `wav_parts` describes, holding `samples` (the decoder's type)."""
    skeleton = before + bytes(length) + after
    return _wav_copy(skeleton, _wav_layout(skeleton), samples)


def _wav_copy(master: bytes, wav: _Wav, samples: NDArray[np.generic]) -> bytes:
    """The master's chunks, its sample data replaced, a PEAK chunk (old peaks) left out."""
    out = bytearray(master[:12])
    position = 12
    while position + 8 <= len(master):
        tag = master[position:position + 4]
        size = int.from_bytes(master[position + 4:position + 8], "little")
        end = min(len(master), position + 8 + size + (size & 1))
        if tag == b"data":
            body = _wav_data(samples, wav)
            out += master[position:position + 8] + body
            out += master[wav.data_end:end]  # a trailing partial frame and the pad byte
        elif tag != b"PEAK":
            out += master[position:end]
        position = end
    out += master[position:]
    out[4:8] = (len(out) - 8).to_bytes(4, "little")
    return bytes(out)


# -- MP3: frame headers walked here, samples decoded by libsndfile (mpg123) ------------

@dataclass(frozen=True)
class _MpegFrame:
    version: int  # 1 for MPEG-1, 2 for MPEG-2 and 2.5
    rate: int
    channels: int
    kbps: int
    length: int
    samples: int


_MPEG_RATES: Final = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000),
                      0: (11025, 12000, 8000)}


def _mpeg_start(data: bytes) -> int | None:
    """Where the first MPEG frame should be: after an ID3v2 tag and its zero padding."""
    position = 0
    while data[position:position + 3] == b"ID3" and len(data) >= position + 10:
        size = 0
        for byte in data[position + 6:position + 10]:
            size = size << 7 | (byte & 0x7F)
        position += 10 + size + (10 if data[position + 5] & 0x10 else 0)
    while position < len(data) and data[position] == 0:
        position += 1
    return position if position + 4 <= len(data) else None


def _mpeg_header(data: bytes, position: int) -> _MpegFrame | None:
    if position + 4 > len(data):
        return None
    b0, b1, b2, b3 = data[position:position + 4]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if b0 != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
        return None
    if index in (0, 15) or rate_index == 3:
        return None
    major = 1 if version == 3 else 2
    rate = _MPEG_RATES[version][rate_index]
    kbps = MP3_BITRATES[major][index - 1]
    per_frame = 1152 if major == 1 else 576
    length = per_frame // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
    return _MpegFrame(major, rate, 1 if b3 >> 6 == 3 else 2, kbps, length, per_frame)


def _mp3_frames(data: bytes) -> tuple[_MpegFrame, int, float]:
    """The first frame, the sample count and the mean bitrate, or why the stream is bad."""
    position = _mpeg_start(data)
    first = None if position is None else _mpeg_header(data, position)
    if position is None or first is None:
        raise UnsupportedAudioError("not an MPEG Layer III (MP3) stream")
    count, kbps_total = 0, 0
    while position < len(data):
        frame = _mpeg_header(data, position)
        if frame is None:
            if data[position:position + 3] == b"TAG" or data[position:position + 8] in (
                    b"APETAGEX", b"LYRICSBE"):
                break  # ID3v1, APEv2 or Lyrics3 tags end the stream
            raise CorruptAudioError(f"the MP3 stream is damaged at byte {position:,}")
        if (frame.rate, frame.channels) != (first.rate, first.channels):
            raise UnsupportedAudioError("the MP3 changes its sample rate or channels midway")
        if position + frame.length > len(data):
            raise CorruptAudioError(f"the MP3 is truncated: its last frame needs "
                                    f"{frame.length} bytes, {len(data) - position} are there")
        count += 1
        kbps_total += frame.kbps
        position += frame.length
    _check_limits(first.rate, first.channels, count * first.samples, "MP3")
    return first, count * first.samples, kbps_total / count


def _nearest_bitrate(kbps: float, version: int) -> int:
    return min(MP3_BITRATES[version], key=lambda standard: (abs(standard - kbps), standard))


# -- decoding --------------------------------------------------------------------------

def decode_audio(data: bytes) -> DecodedAudio:
    """Decode a WAV, FLAC, Ogg Vorbis or MP3 file whole, or raise an
    `UnsupportedAudioError` subclass saying why not."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptAudioError("no audio data")
    data = bytes(data)
    kind = sniff_audio(data)
    if kind == "WAV":
        wav = _wav_layout(data)
        subtype = _WAV_SUBTYPES[wav.format_tag, wav.bits]
        return DecodedAudio(_wav_samples(data, wav), wav.rate, "WAV", subtype)
    if kind == "FLAC":
        return _decode_flac(data)
    if kind == "OGG":
        return _decode_ogg(data)
    first, _frames, mean_kbps = _mp3_frames(data)
    samples = _soundfile_read(data, "MP3", np.float32, None)
    return DecodedAudio(samples, first.rate, "MP3", "MPEG_LAYER_III",
                        _nearest_bitrate(mean_kbps, first.version))


def _soundfile_read(data: bytes, what: str, dtype: type[np.generic],
                    frames: int | None) -> NDArray[np.generic]:
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as source:
            if frames is not None and source.frames != frames:
                raise CorruptAudioError(f"the {what} header says {frames:,} frames, the "
                                        f"decoder finds {source.frames:,}")
            samples = source.read(dtype=np.dtype(dtype).name, always_2d=True)
    except RuntimeError as error:  # soundfile.LibsndfileError
        raise CorruptAudioError(f"the {what} file does not decode: {error}") from error
    if frames is not None and samples.shape[0] != frames:
        raise CorruptAudioError(f"the {what} file is truncated or damaged: {frames:,} "
                                f"frames expected, {samples.shape[0]:,} decoded")
    if samples.shape[0] == 0:
        raise CorruptAudioError(f"the {what} file holds no audio")
    result: NDArray[np.generic] = samples
    return result


def _decode_flac(data: bytes) -> DecodedAudio:
    import soundfile
    from mutagen import MutagenError

    try:
        info = _mutagen("flac").FLAC(io.BytesIO(data)).info
        with soundfile.SoundFile(io.BytesIO(data)) as source:
            subtype = source.subtype
    except (MutagenError, RuntimeError) as error:  # RuntimeError: soundfile's
        raise CorruptAudioError(f"the FLAC file's header is unreadable: {error}") from error
    frames = int(info.total_samples)
    _check_limits(int(info.sample_rate), int(info.channels), frames, "FLAC file")
    if subtype not in _FLAC_SUBTYPES or frames == 0:
        raise UnsupportedAudioError(f"FLAC with {subtype} samples and {frames} frames in "
                                    "its stream info cannot be marked")
    bits = _FLAC_SUBTYPES[subtype]
    samples = _soundfile_read(data, "FLAC", np.int16 if bits <= 16 else np.int32, frames)
    if info.md5_signature and _flac_md5(samples, bits) != info.md5_signature:
        raise CorruptAudioError("the FLAC file is damaged: its samples do not match the MD5 "
                                "in its stream info")
    return DecodedAudio(samples, int(info.sample_rate), "FLAC", subtype)


def _flac_md5(samples: NDArray[np.generic], bits: int) -> int:
    """FLAC's MD5: of the interleaved samples, little-endian, in whole bytes of `bits`."""
    value = samples.astype(np.int32).reshape(-1) >> (16 - bits if bits <= 16 else 32 - bits)
    width = (bits + 7) // 8
    raw = value.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width]
    return int.from_bytes(hashlib.md5(raw.tobytes(), usedforsecurity=False).digest(), "big")


def _ogg_pages(data: bytes) -> list[Any]:
    """Every page of an Ogg file, each checked whole (its checksum too)."""
    from mutagen import MutagenError

    OggPage = _mutagen("ogg").OggPage  # noqa: N806
    stream, pages = io.BytesIO(data), []
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            page = OggPage(stream)
        except (MutagenError, EOFError, OSError) as error:
            raise CorruptAudioError(f"the Ogg file is damaged at byte {start:,}: {error}"
                                    ) from error
        if page.write() != data[start:stream.tell()]:
            raise CorruptAudioError(f"the Ogg file is truncated or damaged at byte {start:,}")
        pages.append(page)
    result: list[Any] = pages
    return result


def _decode_ogg(data: bytes) -> DecodedAudio:
    from mutagen import MutagenError

    pages = _ogg_pages(data)
    packets = pages[0].packets if pages else []
    if not packets or not packets[0].startswith(b"\x01vorbis"):
        raise UnsupportedAudioError("the Ogg stream is not Vorbis (Opus and FLAC in Ogg "
                                    "are not marked)")
    if len({page.serial for page in pages}) != 1:
        raise UnsupportedAudioError("chained or multiplexed Ogg streams are not marked")
    if not pages[-1].last:
        raise CorruptAudioError("the Ogg file is truncated: its last page does not end the "
                                "stream")
    try:
        info = _mutagen("oggvorbis").OggVorbis(io.BytesIO(data)).info
    except MutagenError as error:
        raise CorruptAudioError(f"the Vorbis headers are unreadable: {error}") from error
    rate, channels = int(info.sample_rate), int(info.channels)
    frames = round(info.length * rate)
    _check_limits(rate, channels, frames, "Ogg file")
    samples = _soundfile_read(data, "Ogg", np.float32, None)
    nominal = int(info.bitrate) // 1000 or None
    return DecodedAudio(samples, rate, "OGG", "VORBIS", nominal)


# -- encoding --------------------------------------------------------------------------

def _quantised(marked: NDArray[np.float64], bits: int, dtype: type[np.integer]
               ) -> NDArray[np.generic]:
    """Float samples in [-1, 1) as `dtype` integers holding `bits` significant bits."""
    container = np.iinfo(dtype).bits
    steps = np.clip(np.rint(marked * 2.0 ** (bits - 1)), -(2 ** (bits - 1)),
                    2 ** (bits - 1) - 1)
    return (steps.astype(np.int64) << (container - bits)).astype(dtype)


def _as_float(samples: NDArray[np.generic]) -> NDArray[np.float64]:
    audio = samples.astype(np.float64)
    if np.issubdtype(samples.dtype, np.integer):
        audio /= float(np.iinfo(samples.dtype.name).max) + 1.0
    return audio


def _encode_flac(decoded: DecodedAudio, marked: NDArray[np.float64], master: bytes) -> bytes:
    bits = _FLAC_SUBTYPES[decoded.subtype]
    samples = _quantised(marked, bits, np.int16 if bits <= 16 else np.int32)
    return flac_with_tags_of(master, samples, decoded.sample_rate, decoded.subtype)


def flac_with_tags_of(master: bytes, samples: NDArray[np.generic], sample_rate: int,
                      subtype: str) -> bytes:
    """`samples` (int16, or int32 left-aligned) as a FLAC file with the Vorbis comments and
    pictures of `master`, which may be a FLAC's metadata blocks alone (sealed delivery
    keeps only those)."""
    import soundfile

    FLAC = _mutagen("flac").FLAC  # noqa: N806
    out = io.BytesIO()
    soundfile.write(out, samples, sample_rate, format="FLAC", subtype=subtype)
    out.seek(0)
    source, copy = FLAC(io.BytesIO(master)), FLAC(out)
    if copy.tags is None:
        copy.add_tags()
    assert copy.tags is not None
    copy.tags.clear()
    if source.tags is not None:
        copy.tags.extend(list(source.tags))
    copy.clear_pictures()
    for picture in source.pictures:
        copy.add_picture(picture)
    out.seek(0)
    copy.save(out)
    return out.getvalue()


def _vorbis_level(decoded: DecodedAudio) -> float:
    """libsndfile's compression level for the Vorbis quality nearest the master's bitrate
    (the nominal bitrates are libvorbis's for stereo; per channel for other counts)."""
    if decoded.bitrate_kbps is None:
        return 0.6  # libsndfile's own default, quality 4
    stereo_kbps = decoded.bitrate_kbps * 2 / decoded.channels
    quality = int(np.argmin([abs(k - stereo_kbps) for k in VORBIS_NOMINAL_KBPS]))
    return 1.0 - quality / 10


def _encode_ogg(decoded: DecodedAudio, marked: NDArray[np.float64], master: bytes) -> bytes:
    import soundfile

    OggPage, OggVorbis = _mutagen("ogg").OggPage, _mutagen("oggvorbis").OggVorbis  # noqa: N806

    out = io.BytesIO()
    with soundfile.SoundFile(out, "w", decoded.sample_rate, decoded.channels, "VORBIS",
                             format="OGG", compression_level=_vorbis_level(decoded)) as sink:
        # In blocks: libvorbis puts a whole write's worth of samples on the stack (alloca),
        # and one call with 96 s of stereo overflows it (python-soundfile issue 396).
        for start in range(0, marked.shape[0], VORBIS_BLOCK_FRAMES):
            sink.write(marked[start:start + VORBIS_BLOCK_FRAMES].astype(np.float32))
    source, copy = OggVorbis(io.BytesIO(master)), OggVorbis(io.BytesIO(out.getvalue()))
    tagged = io.BytesIO(out.getvalue())
    assert copy.tags is not None
    copy.tags.clear()
    if source.tags is not None:
        copy.tags.extend(list(source.tags))
    copy.save(tagged)
    # libsndfile gives each stream a random serial number: the master's makes it fixed.
    serial = OggPage(io.BytesIO(master)).serial
    pages, normalised = io.BytesIO(tagged.getvalue()), bytearray()
    while pages.tell() < len(tagged.getvalue()):
        page = OggPage(pages)
        page.serial = serial
        normalised += page.write()
    return bytes(normalised)


def _encode_mp3(decoded: DecodedAudio, marked: NDArray[np.float64], master: bytes) -> bytes:
    import lameenc

    id3 = _mutagen("id3")

    if decoded.channels > 2:
        raise UnsupportedAudioError("an MP3 has at most two channels")
    pcm = _quantised(marked, 16, np.int16)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(decoded.bitrate_kbps or 128)
    encoder.set_in_sample_rate(decoded.sample_rate)
    encoder.set_out_sample_rate(decoded.sample_rate)
    encoder.set_channels(decoded.channels)
    encoder.set_quality(2)
    audio = bytes(encoder.encode(pcm.astype("<i2").tobytes()) + encoder.flush())
    try:
        tags = id3.ID3(io.BytesIO(master))
    except id3.ID3NoHeaderError:
        tags = None
    has_v1 = len(master) >= 128 and master[-128:-125] == b"TAG"
    if tags is None and not has_v1:
        return audio
    if tags is None:
        tags = id3.ID3()
    out = io.BytesIO(audio)
    version = 3 if tags.version[1] == 3 else 4
    tags.save(out, v1=2 if has_v1 else 0, v2_version=version)
    return out.getvalue()


def lossy_donor(master: bytes) -> bytes:
    """What an MP3's or Ogg Vorbis file's copy keeps of it besides the audio: the MP3's
    ID3v2 block and ID3v1 tag; the Ogg stream's header pages (identification, comments,
    setup: the serial number and tags). Sealed delivery stores this instead of the master."""
    kind = sniff_audio(master)
    if kind == "MP3":
        start = _mpeg_start(master) or 0
        tail = master[-128:] if len(master) >= 128 and master[-128:-125] == b"TAG" else b""
        return master[:start] + tail
    if kind != "OGG":
        raise UnsupportedAudioError(f"a {kind} file is not a lossy recording")
    donor = bytearray()
    for page in _ogg_pages(master):
        if page.position not in (0, -1):
            break
        donor += page.write()
    return bytes(donor)


def lossy_like(donor: bytes, kind: str, marked: NDArray[np.float64], sample_rate: int,
               bitrate_kbps: int | None) -> bytes:
    """`marked` (float samples) written as the MP3 or Ogg Vorbis file `lossy_donor` came
    from would be: the same encoder settings as a marked copy, the donor's tags."""
    channels = int(marked.shape[1])
    if kind == "MP3":
        stub = DecodedAudio(np.empty((0, channels), np.float32), sample_rate, "MP3",
                            "MPEG_LAYER_III", bitrate_kbps)
        return _encode_mp3(stub, marked, donor)
    stub = DecodedAudio(np.empty((0, channels), np.float32), sample_rate, "OGG", "VORBIS",
                        bitrate_kbps)
    return _encode_ogg(stub, marked, donor)


# -- the public calls ------------------------------------------------------------------

def embed_audio_bytes(master: bytes, key: bytes, payload: int) -> bytes:
    """The file `master` (WAV, FLAC, Ogg Vorbis or MP3) marked with `payload`, in the same
    format, with its tags.

    Raises an `UnsupportedAudioError` subclass for audio it will not mark (the agent
    records "not marked"), `EmbedCheckError` when the mark's own check refuses its copy
    (digital silence, say), `InvalidKeyError` or `InvalidPayloadError` for bad arguments.
    """
    decoded = decode_audio(master)
    marked = np.asarray(embed(_as_float(decoded.samples), decoded.sample_rate, key, payload),
                        np.float64)
    if decoded.format == "WAV":
        wav = _wav_layout(bytes(master))
        if np.issubdtype(decoded.samples.dtype, np.integer):
            dtype = np.int16 if wav.bits <= 16 else np.int32
            samples = _quantised(marked, wav.bits, dtype)
        else:
            samples = marked.astype(decoded.samples.dtype)
        return _wav_copy(bytes(master), wav, samples)
    if decoded.format == "FLAC":
        return _encode_flac(decoded, marked, bytes(master))
    if decoded.format == "OGG":
        return _encode_ogg(decoded, marked, bytes(master))
    return _encode_mp3(decoded, marked, bytes(master))


def extract_audio_bytes(suspect: bytes, key: bytes, reference: bytes | None = None
                        ) -> ExtractResult:
    """Read the mark in a suspect file; `reference` is the master's file, for an informed
    read (the tracer's)."""
    copy = decode_audio(suspect)
    if reference is None:
        return extract(copy.samples, copy.sample_rate, key)
    master = decode_audio(reference)
    return extract(copy.samples, copy.sample_rate, key, master.samples, master.sample_rate)
