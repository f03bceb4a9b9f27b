"""The licence terms a work may grant: a closed, deny-by-default vocabulary.

An unknown term is an error, never a permission (in the spirit of W3C ODRL). The
vocabulary itself lives in ``licensing.core.terms``, the one source of truth that the
licence tokens and the agents use too.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from licensing.core.terms import USE_DESCRIPTIONS

ALLOWED_USES: dict[str, str] = {use.value: text for use, text in USE_DESCRIPTIONS.items()}
DEFAULT_USES = ("view", "download")
LICENCE_DAYS_MAX = 36500
BYTE_ALLOWANCE_MULTIPLE_MAX = 100
#: How many of one member's devices may hold a live licence for a work at once (the
#: rights holder's term; "one library on every device", docs/MEMBERS.md).
DEVICE_LIMIT_DEFAULT = 3
DEVICE_LIMIT_MIN = 1
DEVICE_LIMIT_MAX = 10

#: Each use's name and description as the portal shows them, in the reader's language (the
#: value itself, "view", stays the same everywhere; the English text is ``ALLOWED_USES``').
USE_NAMES: dict[str, Promise] = {
    "view": pgettext_lazy("licence use", "view"),
    "download": pgettext_lazy("licence use", "download"),
    "print": pgettext_lazy("licence use", "print"),
    "stream": pgettext_lazy("licence use", "stream"),
}
USE_LABELS: dict[str, Promise] = {
    "view": gettext_lazy("Display or play the work privately."),
    "download": gettext_lazy("Keep a copy on the buyer's devices."),
    "print": gettext_lazy("Make physical prints for private use."),
    "stream": gettext_lazy("Stream it to the buyer's own devices."),
}


def parse_uses(values: Iterable[str]) -> list[str]:
    uses: list[str] = []
    for value in values:
        if value not in ALLOWED_USES:
            known = ", ".join(ALLOWED_USES)
            raise ValueError(gettext("unknown use %(use)r; allowed uses are: %(known)s")
                             % {"use": value, "known": known})
        if value not in uses:
            uses.append(value)
    if not uses:
        raise ValueError(gettext("at least one use must be allowed"))
    return uses
