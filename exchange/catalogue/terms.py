"""The licence terms a work may grant: a closed, deny-by-default vocabulary.

An unknown term is an error, never a permission (in the spirit of W3C ODRL).
"""

from __future__ import annotations

from collections.abc import Iterable

ALLOWED_USES: dict[str, str] = {
    "view": "Display or play the work privately.",
    "download": "Keep a copy on the buyer's devices.",
    "print": "Make physical prints for private use.",
    "stream": "Stream it to the buyer's own devices.",
}
DEFAULT_USES = ("view", "download")
LICENCE_DAYS_MAX = 36500
BYTE_ALLOWANCE_MULTIPLE_MAX = 100


def parse_uses(values: Iterable[str]) -> list[str]:
    uses: list[str] = []
    for value in values:
        if value not in ALLOWED_USES:
            known = ", ".join(ALLOWED_USES)
            raise ValueError(f"unknown use {value!r}; allowed uses are: {known}")
        if value not in uses:
            uses.append(value)
    if not uses:
        raise ValueError("at least one use must be allowed")
    return uses
