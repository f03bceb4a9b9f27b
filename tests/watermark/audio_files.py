"""Audio files for the codec's tests: the generated clips written as WAV, FLAC, Ogg Vorbis
and MP3 with the libraries a rights holder's tools use (libsndfile, LAME), optionally
tagged with a title and a cover picture; and the real recording the benchmark uses.

Expected values in the tests come from what is written here (rate, channels, length,
tags), never from the codec under test.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import tarfile
from functools import cache
from pathlib import Path

import lameenc
import numpy as np
import soundfile
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TIT2, TPE1
from mutagen.ogg import OggPage
from mutagen.oggvorbis import OggVorbis
from numpy.typing import NDArray
from PIL import Image

from tests.watermark.audio_clips import RATE, music

TITLE = "Harbour Lights"
ARTIST = "The Peermark Ensemble"

#: the real recording: Kevin MacLeod's "Vibe Ace" (CC BY 3.0), 61 s of 44.1 kHz stereo
#: Ogg Vorbis, tagged with a cover picture, as librosa 0.7.2's source archive ships it
LIBROSA_SDIST = "librosa-0.7.2.tar.gz"
VIBE_ACE = "librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg"
PACKAGES = Path(__file__).resolve().parents[2] / "benchmarks" / ".work" / "pkgs"


@cache
def cover_png() -> bytes:
    """A small cover picture: a 32 x 32 gradient."""
    y, x = np.mgrid[0:32, 0:32]
    out = io.BytesIO()
    Image.fromarray(np.stack([x * 8, y * 8, (x + y) * 4], axis=2).astype(np.uint8)).save(
        out, "PNG")
    return out.getvalue()


def mp3_bytes(samples: NDArray[np.floating], rate: int = RATE, kbps: int = 128) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    encoder.set_channels(channels)
    encoder.set_quality(2)
    pcm = np.clip(np.rint(samples * 32768), -32768, 32767).astype("<i2")
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def encoded(kind: str, samples: NDArray[np.floating], rate: int = RATE) -> bytes:
    """`samples` as a file: "WAV" (16-bit), "WAV24", "FLAC" (16-bit), "FLAC24", "OGG"
    (Vorbis quality 3) or "MP3" (128 kbit/s)."""
    if kind == "MP3":
        return mp3_bytes(samples, rate)
    formats = {"WAV": ("WAV", "PCM_16"), "WAV24": ("WAV", "PCM_24"),
               "FLAC": ("FLAC", "PCM_16"), "FLAC24": ("FLAC", "PCM_24"),
               "OGG": ("OGG", "VORBIS")}
    container, subtype = formats[kind]
    out = io.BytesIO()
    if container != "OGG":
        soundfile.write(out, samples, rate, format=container, subtype=subtype)
        return out.getvalue()
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with soundfile.SoundFile(out, "w", rate, channels, subtype, format=container,
                             compression_level=0.7) as sink:  # Vorbis quality 3
        for start in range(0, len(samples), 1 << 16):  # whole, libvorbis can crash
            sink.write(samples[start:start + (1 << 16)])
    # libsndfile draws a random stream serial: a fixed one makes the same master each run
    pages, fixed = io.BytesIO(out.getvalue()), bytearray()
    while pages.tell() < len(out.getvalue()):
        page = OggPage(pages)
        page.serial = 0x5045_4552
        fixed += page.write()
    return bytes(fixed)


def song_file(kind: str, seconds: float = 10.0, seed: int = 1) -> bytes:
    return encoded(kind, music(seconds, seed=seed))


def tagged(kind: str, data: bytes) -> bytes:
    """`data` with a title, an artist and the cover picture, in the format's own tags."""
    out = io.BytesIO(data)
    if kind == "MP3":
        tags = ID3()
        tags.add(TIT2(encoding=3, text=TITLE))
        tags.add(TPE1(encoding=3, text=ARTIST))
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=cover_png()))
        tags.save(out, v2_version=3)
        return out.getvalue()
    picture = Picture()
    picture.type, picture.mime, picture.width, picture.height = 3, "image/png", 32, 32
    picture.depth, picture.data = 24, cover_png()
    if kind.startswith("FLAC"):
        flac = FLAC(out)
        flac["title"], flac["artist"] = TITLE, ARTIST
        flac.add_picture(picture)
        out.seek(0)
        flac.save(out)
        return out.getvalue()
    if kind == "OGG":
        ogg = OggVorbis(out)
        ogg["title"], ogg["artist"] = TITLE, ARTIST
        ogg["metadata_block_picture"] = base64.b64encode(picture.write()).decode("ascii")
        out.seek(0)
        ogg.save(out)
        return out.getvalue()
    # WAV: a LIST/INFO chunk with the title and artist, written by hand (RIFF layout)
    def sub(tag: bytes, text: str) -> bytes:
        body = text.encode() + b"\0"
        return tag + len(body).to_bytes(4, "little") + body + b"\0" * (len(body) & 1)

    info = b"INFO" + sub(b"INAM", TITLE) + sub(b"IART", ARTIST)
    chunk = b"LIST" + len(info).to_bytes(4, "little") + info
    whole = data + chunk
    return whole[:4] + (len(whole) - 8).to_bytes(4, "little") + whole[8:]


def vibe_ace() -> bytes | None:
    """The real recording, from librosa 0.7.2's source archive (fetched with pip into
    benchmarks/.work/pkgs if it is not there yet), or None where it cannot be had."""
    archive = PACKAGES / LIBROSA_SDIST
    if not archive.exists():
        PACKAGES.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-d", str(PACKAGES), "librosa==0.7.2"],
                       check=False, capture_output=True, timeout=300)
    if not archive.exists():
        return None
    with tarfile.open(archive) as sdist:
        member = sdist.extractfile(VIBE_ACE)
        return None if member is None else member.read()
