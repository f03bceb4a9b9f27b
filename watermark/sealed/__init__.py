"""Sealed delivery: joint decryption and marking, so a buyer never holds an unmarked copy.

The platform seals a work once (`seal_image`): each cell's mark-carrying coefficient is
hidden under a sum of entries of a secret noise table. Each licence gets a personal table
(`personal_table`): the negated noise plus a mark drawn from a Tardos codeword that the
licence's payload selects. Applying it (`unseal`) cancels the noise and leaves the mark in
one integer sum. A suspect copy is traced against every issued licence with `accuse`.
The construction is that of Celik, Lemma, Katzenbeisser and van der Veen (2008) with the
Tardos code of Katzenbeisser, Skoric, Celik and Sadeghi (2007); docs/SEALED.md gives the
choices and the security argument.
"""

from __future__ import annotations

from typing import Final

from watermark.sealed.container import SealedInfo, container_info
from watermark.sealed.detect import Accusation, Candidate, accuse
from watermark.sealed.errors import SealedFormatError
from watermark.sealed.seal import seal_image
from watermark.sealed.table import personal_table
from watermark.sealed.unseal import unseal

#: media types a work may be sealed for (the image formats the image mark writes)
SEALABLE_MEDIA_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp"})

__all__ = [
    "SEALABLE_MEDIA_TYPES",
    "Accusation",
    "Candidate",
    "SealedFormatError",
    "SealedInfo",
    "accuse",
    "container_info",
    "personal_table",
    "seal_image",
    "unseal",
]
