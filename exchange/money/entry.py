"""Amounts as people type and read them: major units in the active language's notation.

People think in euros and won, not in cents: "12.50" is €12.50, "12,50" is the same
amount to a German, and "15,000" is ₩15,000 to a Korean. The parsing is Babel's (CLDR's
symbols for the locale), strict, so that "1.234,5" typed under English is refused rather
than read as something else; then the amount must fit the currency's own exponent
(KRW and JPY none, USD two, KWD three): a fraction of a won is an error, not a rounding.
The ledger and the API keep integer minor units; this is only the human side.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.core import Locale, UnknownLocaleError
from babel.numbers import (
    NumberFormatError,
    format_decimal,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)
from django.utils import translation

from exchange.money.currencies import minor_unit_exponent

COMMON_CURRENCIES = ("KRW", "EUR", "USD", "JPY", "GBP", "CNY")
"""Offered first on every form: the exchange's first users are Korean and European."""


class AmountError(ValueError):
    """An amount a person typed that is not one: the message says what to type."""


def active_locale() -> str:
    """The Babel locale of the language the request is served in ("en", "ko")."""
    language = translation.get_language() or "en"
    try:
        return str(Locale.parse(translation.to_locale(language)))
    except (ValueError, UnknownLocaleError):
        return "en"


def parse_major(text: str, currency: str, *, locale: str | None = None) -> int:
    """The minor units of an amount typed in major units: "12.50" EUR -> 1250, "15,000"
    KRW -> 15000, "0.125" KWD -> 125. Refuses what is not a positive number in the
    locale's notation, or has more decimals than the currency has."""
    locale = locale or active_locale()
    exponent = minor_unit_exponent(currency)
    cleaned = "".join(text.split()).replace("\u00a0", "")
    for symbol in (currency, get_currency_symbol(currency, locale=locale)):
        cleaned = cleaned.removeprefix(symbol).removesuffix(symbol)
    if not cleaned:
        raise AmountError(translation.gettext("Enter an amount."))
    example = format_decimal(Decimal(123456).scaleb(-exponent) if exponent else 15000,
                             format="#,##0." + "0" * exponent if exponent else "#,##0",
                             locale=locale)
    allowed = set("0123456789") | {get_decimal_symbol(locale), get_group_symbol(locale)}
    try:
        if not set(cleaned) <= allowed:  # no signs, exponents, NaN or other letters
            raise NumberFormatError(cleaned)
        value = parse_decimal(cleaned, locale=locale, strict=True)
    except (NumberFormatError, InvalidOperation):
        raise AmountError(translation.gettext(
            "Enter an amount in %(currency)s as a number, for example %(example)s.")
            % {"currency": currency, "example": example}) from None
    if not value.is_finite() or value <= 0:
        raise AmountError(translation.gettext("Enter an amount above zero."))
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        if exponent == 0:
            message = translation.gettext("%(currency)s has no smaller unit: enter a whole "
                                          "number.") % {"currency": currency}
        else:
            message = translation.ngettext(
                "%(currency)s has %(digits)d decimal: enter at most %(digits)d.",
                "%(currency)s has %(digits)d decimals: enter at most %(digits)d.",
                exponent) % {"currency": currency, "digits": exponent}
        raise AmountError(message)
    if minor >= Decimal(2) ** 62:
        raise AmountError(translation.gettext("That amount is too large."))
    return int(minor)


def major_text(amount_minor: int, currency: str, *, locale: str | None = None) -> str:
    """An amount in major units as a form shows it back: 1250 EUR -> "12.50" (no symbol,
    no grouping, the locale's decimal sign), so that it parses again as it reads."""
    exponent = minor_unit_exponent(currency)
    value = Decimal(amount_minor).scaleb(-exponent)
    return str(format_decimal(value, format="0." + "0" * exponent if exponent else "0",
                              locale=locale or active_locale()))
