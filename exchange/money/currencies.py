"""ISO 4217 data from Babel (CLDR), not a hand-typed table.

Only currencies that some territory uses as legal tender today are accepted: CLDR
also lists retired ones (ATS, BEF) and non-currencies (XAU gold, XTS testing).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision, get_territory_currencies


@lru_cache(maxsize=1)
def active_currencies() -> frozenset[str]:
    today = dt.datetime.now(tz=dt.UTC).date()
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(
            get_territory_currencies(territory, start_date=today, end_date=today, tender=True)
        )
    return frozenset(codes)


def is_known_currency(code: str) -> bool:
    return code in active_currencies()


def minor_unit_exponent(code: str) -> int:
    """Digits after the decimal point: JPY 0, USD 2, KWD 3."""
    if not is_known_currency(code):
        raise ValueError(f"unknown currency {code!r}")
    return int(get_currency_precision(code))


def format_minor(amount_minor: int, code: str, locale: str | None = None) -> str:
    """Human text for an amount, e.g. 1250 EUR -> '€12.50', in ``locale`` (default: the
    language the request is served in, so the API's ``display`` fields and error messages
    follow Accept-Language, as the portal's pages do). Display only, never arithmetic."""
    if locale is None:
        from exchange.money.entry import active_locale

        locale = active_locale()
    return _format_minor(amount_minor, code, locale)


@lru_cache(maxsize=4096)
def _format_minor(amount_minor: int, code: str, locale: str) -> str:
    """Remembered: every sale's invoice and response format the work's price, and Babel's
    formatting cost about as much as a database round trip."""
    from decimal import Decimal

    exponent = minor_unit_exponent(code)
    value = Decimal(amount_minor).scaleb(-exponent)
    return str(format_currency(value, code, locale=locale))
