"""Amounts of money as the agent shows them: integer minor units in, text out.

The platform keeps and sends every amount as a whole number of the currency's minor
unit. How many digits that unit has (KRW 0, EUR 2, KWD 3) is CLDR's, read through
Babel: the same data the platform formats with, so an amount the agent adds up itself
(pending top-ups, say) reads exactly as the platform's own figures do.
"""

from __future__ import annotations

from decimal import Decimal

LOCALE = "en"  # the platform's API formats in English too


def format_minor(amount_minor: int, currency: str) -> str:
    """``1250, "EUR"`` -> ``"€12.50"``; ``1250, "KRW"`` -> ``"₩1,250"``. Display only."""
    from babel.numbers import format_currency, get_currency_precision  # only where shown

    exponent = int(get_currency_precision(currency))
    return str(format_currency(Decimal(amount_minor).scaleb(-exponent), currency,
                               locale=LOCALE))


def format_amounts(amounts: dict[str, int]) -> str:
    """Several currencies' totals as one phrase, e.g. ``"€1.20 + ₩300"`` (sorted by code)."""
    return " + ".join(format_minor(amounts[code], code) for code in sorted(amounts))
