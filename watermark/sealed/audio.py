"""Sealed delivery for recordings, in the PCM domain before the file is encoded.

WAV and FLAC of 16 or 24-bit PCM keep their depth; an MP3 master is decoded, marked in
16-bit PCM and encoded again at its own bitrate, as the audio mark does. A lossy master is
sealed only if the mark survives that encoding (`seal_audio` checks it with a probe
licence): at low bitrates the encoder discards it. Ogg Vorbis is never sealed: its encoder
discarded the mark at its usual qualities (docs/SEALED.md).

The same construction as for pictures (docs/SEALED.md): each frame's atom coefficients
(`audio_atoms`) of the channels' mix are sealed under noise-table entries; every channel
keeps the rest (the complement); a personal table cancels the noise and adds the mark,
the same in every channel, in one integer sum, before the file is written in the master's
format. The mark on an atom has a standard deviation of `MARK_RATIO` of the local
coefficients' level (3 frames x 3 atoms around it), so it follows the music's own
spectrum: louder where the music is, none in digital silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.audio.codec import (
    DecodedAudio,
    decode_audio,
    flac_with_tags_of,
    lossy_donor,
    lossy_like,
    wav_from_parts,
    wav_parts,
)
from watermark.errors import AudioTooShortError, EmbedCheckError, UnsupportedAudioError
from watermark.payload import validate_key, validate_payload
from watermark.sealed import audio_atoms, keyed
from watermark.sealed.audio_container import (
    LOSSY,
    AudioContainer,
    SealedAudioInfo,
    read_audio_container,
    write_audio_container,
)
from watermark.sealed.detect import Accusation, accusation, bit_evidence
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.lookups import lookups
from watermark.sealed.params import CODE_BITS, EPSILON
from watermark.sealed.sealing import table_size_for
from watermark.sealed.table import read_table

MARK_RATIO: Final = 0.045
"""Mark level per atom against the local level of the music around it (-27 dB). Over a
whole song that is about 48 dB SNR: the bass below 300 Hz, which holds most of a mix's
energy, carries no mark (docs/SEALED.md, "Recordings")."""

MIN_SECONDS: Final = 5.0
MAX_SCALE: Final = 1 << 31
_SUBTYPES: Final = {"PCM_16": 16, "PCM_24": 24}


def _pcm(decoded: DecodedAudio) -> NDArray[np.int64]:
    """Samples as integers in the file's own bit depth (16 bits for a lossy file)."""
    if decoded.format in LOSSY:
        scaled = np.rint(decoded.samples.astype(np.float64) * 32768.0)
        return np.clip(scaled, -32768, 32767).astype(np.int64)
    samples = decoded.samples.astype(np.int64)
    return samples >> 8 if decoded.subtype == "PCM_24" else samples


def _depth(decoded: DecodedAudio) -> str:
    return "PCM_16" if decoded.format in LOSSY else decoded.subtype


def _check_sealable(decoded: DecodedAudio) -> None:
    if decoded.format != "MP3" and (decoded.format not in {"WAV", "FLAC"}
                                    or decoded.subtype not in _SUBTYPES):
        raise UnsupportedAudioError(
            "only 16 or 24-bit PCM WAV and FLAC, and MP3 recordings can be sealed "
            f"(this is {decoded.format} {decoded.subtype})")
    if decoded.samples.shape[0] < MIN_SECONDS * decoded.sample_rate:
        raise AudioTooShortError(f"a sealed recording lasts at least {MIN_SECONDS:.0f} s")


def _frames(mix: NDArray[np.float64], rate: int) -> NDArray[np.float64]:
    length = audio_atoms.frame_length(rate)
    count = mix.size // length
    return mix[: count * length].reshape(count, length)


def _box3(level: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean over 3 frames x 3 atoms around each atom (edges repeated)."""
    padded = np.pad(level, 1, mode="edge")
    total = np.zeros_like(level)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            total += padded[dy : dy + level.shape[0], dx : dx + level.shape[1]]
    return total / 9.0


def scales(coefficients: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each atom's mark scale from the coefficients around it (in 1/8 sample step of mark
    standard deviation, like a picture cell's)."""
    local = _box3(np.square(coefficients.astype(np.float64) / 16.0))
    return np.clip(np.rint(8.0 * MARK_RATIO * np.sqrt(local)), 1, MAX_SCALE).astype(np.int64)


def _mix(pcm: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.asarray(pcm.astype(np.float64).mean(axis=1), np.float64)


def seal_audio(master: bytes, key: bytes) -> bytes:
    """The sealed container of a WAV or FLAC master (16 or 24-bit PCM) under `key`."""
    raw_key = validate_key(key)
    decoded = decode_audio(master)
    _check_sealable(decoded)
    rate = decoded.sample_rate
    pcm = _pcm(decoded)
    frames = _frames(_mix(pcm), rate)
    alpha = audio_atoms.project(frames, rate)
    scale = scales(alpha)
    if float(np.sqrt(np.mean(np.square(scale / 8.0)))) < 1.0:
        # the mark's RMS below one step of the file: rounding would erase it
        raise EmbedCheckError("the recording is too quiet to carry a mark")
    size = table_size_for(alpha.size)
    seed = keyed.lookup_seed(raw_key)
    noise = keyed.noise_table(raw_key, size)[lookups(seed, alpha.size, size)].sum(axis=1)
    sealed = alpha + scale * noise.reshape(alpha.shape)
    complement = pcm.copy()
    body = audio_atoms.spread(alpha, rate).reshape(-1)
    complement[: body.size] -= body[:, None]
    if decoded.format == "WAV":
        before, length, after = wav_parts(bytes(master))
    elif decoded.format == "FLAC":
        before, length, after = _flac_metadata(bytes(master)), 0, b""
    else:
        before, length, after = lossy_donor(bytes(master)), 0, b""
    info = SealedAudioInfo(decoded.format, _depth(decoded), rate, decoded.channels,
                           pcm.shape[0], size, CODE_BITS, seed, before, length, after,
                           decoded.bitrate_kbps if decoded.format in LOSSY else None)
    container = write_audio_container(AudioContainer(info, complement.astype(np.int32),
                                                      sealed, scale))
    if decoded.format in LOSSY:
        _check_survives(container, bytes(master), raw_key)
    return container


PROBES: Final = 64
"""Licences a lossy master's probe copy is accused against (payload 0 made it)."""


def _check_survives(container: bytes, master: bytes, key: bytes) -> None:
    """Refuse (`EmbedCheckError`) a container whose copies the encoder strips of their
    mark: a probe licence's copy must be named, alone, among `PROBES` licences."""
    from watermark.sealed.table import personal_table

    info = read_sealed_audio(container).info
    copy = unseal_audio(container, personal_table(key, 0, info.table_size))
    named = [c.payload for c in accuse_audio(copy, master, key, range(PROBES)).accused]
    if named != [0]:
        raise EmbedCheckError(f"the mark does not survive encoding this {info.format} at "
                              f"{info.bitrate} kbit/s; deliver it marked instead")


def _flac_metadata(master: bytes) -> bytes:
    """A FLAC file's marker and metadata blocks (the last one flagged), no audio frames."""
    position = 4
    while position + 4 <= len(master):
        header = master[position]
        position += 4 + int.from_bytes(master[position + 1 : position + 4], "big")
        if header & 0x80:
            return master[:position]
    raise UnsupportedAudioError("the FLAC file's metadata blocks do not end")


def read_sealed_audio(container: bytes) -> AudioContainer:
    from watermark.sealed.audio_container import audio_container_info

    info = audio_container_info(container)
    frames = info.samples // audio_atoms.frame_length(info.rate)
    return read_audio_container(container, frames, len(audio_atoms.bins(info.rate)))


def unseal_audio(container: bytes, table: bytes) -> bytes:
    """The marked file a sealed recording and a personal table give."""
    parts = read_sealed_audio(container)
    info = parts.info
    entries = read_table(table, info.table_size)
    picked = entries[lookups(info.lookup_seed, parts.sealed.size, info.table_size)]
    coefficients = parts.sealed + parts.scale * picked.sum(axis=1, dtype=np.int64).reshape(
        parts.sealed.shape)
    pcm = parts.complement.astype(np.int64)
    body = audio_atoms.spread(coefficients, info.rate).reshape(-1)
    pcm[: body.size] += body[:, None]
    top = (1 << (info.bits - 1)) - 1
    pcm = np.clip(pcm, -top - 1, top)
    samples = pcm.astype(np.int16) if info.bits == 16 else (pcm << 8).astype(np.int32)
    try:
        if info.format in LOSSY:
            return lossy_like(info.before, info.format, pcm.astype(np.float64) / 32768.0,
                              info.rate, info.bitrate)
        if info.format == "WAV":
            return wav_from_parts(info.before, info.data_length, info.after, samples)
        return flac_with_tags_of(info.before, samples, info.rate, info.subtype)
    except Exception as error:  # libsndfile, LAME and mutagen each raise
        # their own kinds on a header they cannot write back: all are a bad container
        raise SealedFormatError(f"sealed recording: the copy cannot be written: {error}"
                                ) from error


def _mono(decoded: DecodedAudio, bits: int) -> NDArray[np.float64]:
    """The mix in sample steps of a `bits`-bit file, whatever the copy's type."""
    samples = decoded.samples.astype(np.float64)
    if np.issubdtype(decoded.samples.dtype, np.integer):
        samples /= float(np.iinfo(decoded.samples.dtype.name).max) + 1.0
    return np.asarray(samples.mean(axis=1) * float(1 << (bits - 1)), np.float64)


SPEEDS: Final = np.round(np.arange(0.97, 1.0301, 0.0025), 4)
"""Playback speeds a copy is tried at (a turntable's or tape's change, pitch with it)."""
_DECIMATE: Final = 8


def _correlation(copy: NDArray[np.float64], master: NDArray[np.float64]
                 ) -> tuple[int, float]:
    """The lag of the copy in the master at the waveforms' best cross-correlation, and how
    well they fit there (normalised)."""
    size = 1 << int(np.ceil(np.log2(copy.size + master.size)))
    product = np.fft.rfft(master, size) * np.conj(np.fft.rfft(copy, size))
    correlation = np.fft.irfft(product, size)
    lag = int(np.argmax(correlation))
    energy = float(np.sqrt(np.square(copy).sum() * np.square(master).sum()))
    if lag > size // 2:
        lag -= size  # the copy starts before the master (an encoder's priming)
    return lag, float(correlation[lag % size]) / max(energy, 1e-30)


def _at_speed(copy: NDArray[np.float64], speed: float) -> NDArray[np.float64]:
    """A copy played `speed` times as fast, put back on the master's clock."""
    if speed == 1.0:
        return copy
    positions = np.arange(int((copy.size - 1) * speed)) / speed
    return np.asarray(np.interp(positions, np.arange(copy.size), copy), np.float64)


def _speed(copy: NDArray[np.float64], master: NDArray[np.float64]) -> float:
    """The playback speed whose correction fits the master's waveform best, found on both
    signals averaged over 8 samples (the fit is the music's, never the mark's, so trying
    several speeds costs the accusation's bound nothing)."""
    def coarse(signal: NDArray[np.float64]) -> NDArray[np.float64]:
        usable = signal.size // _DECIMATE * _DECIMATE
        return np.asarray(signal[:usable].reshape(-1, _DECIMATE).mean(axis=1), np.float64)

    small_copy, small_master = coarse(copy), coarse(master)
    fits = [_correlation(_at_speed(small_copy, float(s)), small_master)[1] for s in SPEEDS]
    return float(SPEEDS[int(np.argmax(fits))])


def _aligned(copy: NDArray[np.float64], master: NDArray[np.float64]) -> NDArray[np.float64]:
    """The copy moved onto the master's timeline (zeros where it does not reach), by the
    lag of the waveforms' best cross-correlation."""
    lag, _fit = _correlation(copy, master)
    out = np.zeros_like(master)
    start, source = max(lag, 0), max(-lag, 0)
    count = max(0, min(master.size - start, copy.size - source))
    out[start : start + count] = copy[source : source + count]
    return out


def audio_evidence(suspect: DecodedAudio, master: DecodedAudio,
                   key: bytes) -> tuple[NDArray[np.float64], float]:
    """Unit-norm soft evidence per code bit of a recording, and its strength."""
    bits = _SUBTYPES.get(_depth(master), 16)
    rate = master.sample_rate
    reference = _mono(master, bits)
    copy = _mono(suspect, bits)
    if suspect.sample_rate != rate:
        positions = np.arange(int(copy.size * rate / suspect.sample_rate)) * (
            suspect.sample_rate / rate)
        copy = np.interp(positions, np.arange(copy.size), copy)
    aligned = _aligned(_at_speed(copy, _speed(copy, reference)), reference)
    length = audio_atoms.frame_length(rate)
    covered = _frames((aligned != 0).astype(np.float64), rate).mean(axis=1) > 0.99
    master_frames = _frames(reference, rate)
    copy_frames = _frames(aligned, rate)
    inside = np.repeat(covered, length)
    gain = float(copy_frames.reshape(-1)[inside] @ master_frames.reshape(-1)[inside]) / max(
        float(np.square(master_frames.reshape(-1)[inside]).sum()), 1e-9)
    residual = copy_frames - gain * master_frames
    shaped = audio_atoms.atoms(rate).astype(np.float64) / audio_atoms.ATOM_UNIT
    matched = residual @ shaped.T / np.square(shaped).sum(axis=1)
    noise = _box3(np.square(matched)) + 1e-6
    scale = scales(audio_atoms.project(master_frames, rate)).astype(np.float64)
    scale = np.where(covered[:, None], scale, 0.0)
    return bit_evidence(matched, noise, scale, key, table_size_for(matched.size))


def accuse_audio(suspect: bytes, master: bytes, key: bytes, payloads: Sequence[int], *,
                 epsilon: float = EPSILON) -> Accusation:
    """Which of `payloads` made a suspect recording (any format the audio mark reads)."""
    raw_key = validate_key(key)
    values = [validate_payload(p) for p in payloads]
    soft, strength = audio_evidence(decode_audio(suspect), decode_audio(master), raw_key)
    return accusation(soft, raw_key, values, epsilon=epsilon, alignment=None,
                      strength=strength)
