"""Field rules shared by the API serializers and the portal forms, so both say the same."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from exchange.catalogue.terms import (
    BYTE_ALLOWANCE_MULTIPLE_MAX,
    DEVICE_LIMIT_MAX,
    DEVICE_LIMIT_MIN,
    LICENCE_DAYS_MAX,
    parse_uses,
)
from exchange.money.currencies import format_minor, is_known_currency
from exchange.money.limits import limit_minor


def validate_currency(code: str) -> None:
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValidationError(_("Use a three-letter ISO 4217 code in capitals, e.g. EUR."))
    if not is_known_currency(code):
        raise ValidationError(_("Unknown or retired currency %(code)r.") % {"code": code})


def validate_price(price_minor: int, currency: str) -> None:
    if isinstance(price_minor, bool) or not isinstance(price_minor, int):
        raise ValidationError(
            _("The price must be a whole number of minor units (e.g. cents)."))
    if price_minor <= 0:
        raise ValidationError(_("The price must be greater than zero."))
    if is_known_currency(currency):
        ceiling = limit_minor(settings.MAX_PRICE_MAJOR, currency)
        if price_minor > ceiling:
            raise ValidationError(
                _("The price is above the limit of %(limit)s.")
                % {"limit": format_minor(ceiling, currency)}
            )


def validate_uses(values: list[str]) -> list[str]:
    try:
        return parse_uses(values)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def validate_licence_days(days: int) -> None:
    if not 1 <= days <= LICENCE_DAYS_MAX:
        raise ValidationError(_("Licence lifetime must be 1 to %(max)s days.")
                              % {"max": LICENCE_DAYS_MAX})


def validate_device_limit(limit: int) -> None:
    if not DEVICE_LIMIT_MIN <= limit <= DEVICE_LIMIT_MAX:
        raise ValidationError(
            _("The device limit must be %(min)s to %(max)s devices.")
            % {"min": DEVICE_LIMIT_MIN, "max": DEVICE_LIMIT_MAX}
        )


def validate_byte_allowance_multiple(multiple: int) -> None:
    if not 1 <= multiple <= BYTE_ALLOWANCE_MULTIPLE_MAX:
        raise ValidationError(
            _("The byte allowance must be 1 to %(max)s times the work's size.")
            % {"max": BYTE_ALLOWANCE_MULTIPLE_MAX}
        )
