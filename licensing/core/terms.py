"""Licence terms: the closed, deny-by-default vocabulary of uses.

In the spirit of W3C ODRL, a licence lists the uses it permits. The vocabulary is
closed: a term outside it is an error (``UnknownTermError``), never a permission,
and a use not listed is denied. This module is the one source of truth; the
catalogue (Django side) imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .errors import MalformedError, UnknownTermError


class Use(StrEnum):
    """A use of a work that a licence may permit."""

    VIEW = "view"
    DOWNLOAD = "download"
    PRINT = "print"
    STREAM = "stream"


#: every use with a one-line description, in catalogue order
USE_DESCRIPTIONS: dict[Use, str] = {
    Use.VIEW: "Display or play the work privately.",
    Use.DOWNLOAD: "Keep a copy on the buyer's devices.",
    Use.PRINT: "Make physical prints for private use.",
    Use.STREAM: "Stream it to the buyer's own devices.",
}


def parse_use(value: object) -> Use:
    """One term, or ``UnknownTermError`` if it is outside the vocabulary."""
    if not isinstance(value, str):
        raise UnknownTermError("a licence term must be a string")
    try:
        return Use(value)
    except ValueError:
        known = ", ".join(u.value for u in Use)
        raise UnknownTermError(f"unknown licence term {value[:40]!r}; known: {known}") from None


def parse_uses(values: Iterable[object]) -> frozenset[Use]:
    """A non-empty set of terms without repeats; any unknown term is an error."""
    uses = [parse_use(v) for v in values]
    if not uses:
        raise MalformedError("a licence must permit at least one use")
    if len(set(uses)) != len(uses):
        raise MalformedError("a licence lists a use twice")
    return frozenset(uses)
