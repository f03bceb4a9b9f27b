"""What a read found, for every medium: the shape the agent and the tracer rely on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watermark.register import Alignment


@dataclass(frozen=True)
class ExtractResult:
    """What a read found. `payload` is None unless `found`.

    `bit_errors` is how many of the 282 coded bits the decoder had to correct; `score` is the
    normalised correlation between the detector's soft values and the decoded codeword (about
    0.56 for pure noise, where the keyed check then fails; near 1 for a clean copy).
    `alignment` says how an informed image read put the copy back onto the master;
    `offset_seconds` and `speed` where an audio read found the mark in the copy's time.
    `evidence` names the carriers that gave the payload, where a medium has several
    (a video: "picture", "audio"; a document: "identifier", "text", "images").
    """

    found: bool
    payload: int | None
    bit_errors: int
    score: float
    informed: bool = False
    alignment: Alignment | None = None
    offset_seconds: float | None = None
    speed: float | None = None
    evidence: tuple[str, ...] = ()
