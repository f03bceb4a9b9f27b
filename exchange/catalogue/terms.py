"""The licence terms a work may grant: a closed, deny-by-default vocabulary.

An unknown term is an error, never a permission (in the spirit of W3C ODRL). The
vocabulary itself lives in ``licensing.core.terms``, the one source of truth that the
licence tokens and the agents use too.
"""

from __future__ import annotations

from collections.abc import Iterable

from licensing.core.terms import USE_DESCRIPTIONS

ALLOWED_USES: dict[str, str] = {use.value: text for use, text in USE_DESCRIPTIONS.items()}
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
