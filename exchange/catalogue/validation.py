"""Field rules shared by the API serializers and the portal forms, so both say the same."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from exchange.catalogue.terms import (
    BYTE_ALLOWANCE_MULTIPLE_MAX,
    LICENCE_DAYS_MAX,
    parse_uses,
)
from exchange.money.currencies import format_minor, is_known_currency
from exchange.money.limits import limit_minor


def validate_currency(code: str) -> None:
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValidationError("Use a three-letter ISO 4217 code in capitals, e.g. EUR.")
    if not is_known_currency(code):
        raise ValidationError(f"Unknown or retired currency {code!r}.")


def validate_price(price_minor: int, currency: str) -> None:
    if isinstance(price_minor, bool) or not isinstance(price_minor, int):
        raise ValidationError("The price must be a whole number of minor units (e.g. cents).")
    if price_minor <= 0:
        raise ValidationError("The price must be greater than zero.")
    if is_known_currency(currency):
        ceiling = limit_minor(settings.MAX_PRICE_MAJOR, currency)
        if price_minor > ceiling:
            raise ValidationError(
                f"The price is above the limit of {format_minor(ceiling, currency)}."
            )


def validate_uses(values: list[str]) -> list[str]:
    try:
        return parse_uses(values)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def validate_licence_days(days: int) -> None:
    if not 1 <= days <= LICENCE_DAYS_MAX:
        raise ValidationError(f"Licence lifetime must be 1 to {LICENCE_DAYS_MAX} days.")


def validate_byte_allowance_multiple(multiple: int) -> None:
    if not 1 <= multiple <= BYTE_ALLOWANCE_MULTIPLE_MAX:
        raise ValidationError(
            f"The byte allowance must be 1 to {BYTE_ALLOWANCE_MULTIPLE_MAX} times the work's size."
        )
