"""Sealed delivery: joint decryption and marking, so a buyer never holds an unmarked copy.

The platform seals a work once (`seal`): the coefficients that carry the mark are hidden
under sums of entries of a secret noise table. Each licence gets a personal table
(`personal_table`): the negated noise plus a mark drawn from a Tardos codeword that the
licence's payload selects. Applying it (`unseal`) cancels the noise and leaves the mark in
one integer sum. A suspect copy is traced against every issued licence with `accuse`.
The construction is that of Celik, Lemma, Katzenbeisser and van der Veen (2008) with the
Tardos code of Katzenbeisser, Skoric, Celik and Sadeghi (2007); docs/SEALED.md gives the
choices and the security argument. Pictures (PNG, JPEG, WebP) and recordings (16 or
24-bit WAV and FLAC, MP3) can be sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from watermark.sealed.audio_container import MAGIC as _AUDIO_MAGIC
from watermark.sealed.audio_container import SealedAudioInfo, audio_container_info
from watermark.sealed.container import SealedInfo
from watermark.sealed.container import container_info as _image_info
from watermark.sealed.detect import Accusation, Candidate, accuse_image
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.params import EPSILON
from watermark.sealed.sealing import seal_image
from watermark.sealed.table import personal_table

#: media types sealed pictures are made from (the formats the image mark writes)
SEALABLE_IMAGE_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp"})
#: media types sealed recordings are made from (WAV and FLAC of 16 or 24-bit PCM, MP3)
SEALABLE_AUDIO_TYPES: Final = frozenset(
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/flac", "audio/x-flac", "audio/mpeg",
     "audio/mp3"})
#: every media type a work may be sealed for
SEALABLE_MEDIA_TYPES: Final = SEALABLE_IMAGE_TYPES | SEALABLE_AUDIO_TYPES
#: the media types new works are sealed for unless the rights holder says otherwise
SEALED_BY_DEFAULT: Final = SEALABLE_IMAGE_TYPES


def _base(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def seal(master: bytes, content_type: str, key: bytes) -> bytes:
    """The sealed container of a master of this media type under the work's `key`.

    Raises `UnsupportedImageError` / `UnsupportedAudioError` subclasses for a master
    that cannot be sealed (`EmbedCheckError` for a recording too quiet to carry a mark),
    `SealedFormatError` for a media type that is never sealed.
    """
    from watermark.errors import UnsupportedAudioError, UnsupportedImageError

    base = _base(content_type)
    if base in SEALABLE_IMAGE_TYPES:
        container = seal_image(master, key)
        refusal: type[Exception] = UnsupportedImageError
    elif base in SEALABLE_AUDIO_TYPES:
        from watermark.sealed.audio import seal_audio

        container = seal_audio(master, key)
        refusal = UnsupportedAudioError
    else:
        raise SealedFormatError(f"{content_type or 'this media type'} cannot be sealed")
    try:  # what the agent's reader would refuse is not handed over as sealed
        container_info(container)
    except SealedFormatError as error:
        raise refusal(f"the master cannot be sealed: {error}") from error
    return container


def container_info(container: bytes) -> SealedInfo | SealedAudioInfo:
    """The checked header of a sealed container: `.table_size`, `.content_type`."""
    if bytes(container[: len(_AUDIO_MAGIC)]) == _AUDIO_MAGIC:
        return audio_container_info(container)
    return _image_info(container)


def unseal(container: bytes, table: bytes) -> bytes:
    """The marked file a sealed container and a personal table give: the agent's whole
    delivery step (`SealedFormatError` if either is malformed or not for the other)."""
    if bytes(container[: len(_AUDIO_MAGIC)]) == _AUDIO_MAGIC:
        from watermark.sealed.audio import unseal_audio

        return unseal_audio(container, table)
    from watermark.sealed.unsealing import unseal_image

    return unseal_image(container, table)


def accuse(suspect: bytes, master: bytes, key: bytes, payloads: Sequence[int], *,
           epsilon: float = EPSILON) -> Accusation:
    """Which of `payloads` (every licence issued for the work) made the suspect copy; the
    medium is the master's. Raises the image or audio library's errors for a suspect or
    master it cannot read."""
    from watermark.audio.codec import sniff_audio
    from watermark.errors import UnsupportedAudioError

    try:
        is_audio = bool(sniff_audio(bytes(master)))
    except UnsupportedAudioError:
        is_audio = False
    if is_audio:
        from watermark.sealed.audio import accuse_audio

        return accuse_audio(suspect, master, key, payloads, epsilon=epsilon)
    return accuse_image(suspect, master, key, payloads, epsilon=epsilon)


__all__ = [
    "SEALABLE_AUDIO_TYPES",
    "SEALABLE_IMAGE_TYPES",
    "SEALABLE_MEDIA_TYPES",
    "SEALED_BY_DEFAULT",
    "Accusation",
    "Candidate",
    "SealedAudioInfo",
    "SealedFormatError",
    "SealedInfo",
    "accuse",
    "container_info",
    "personal_table",
    "seal",
    "seal_image",
    "unseal",
]
