"""The serializer field for a currency code."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field

from exchange.core.fields import StrictCharField
from exchange.money.currencies import is_known_currency


# The schema gives the form, not the list: which currencies are in use changes with
# time (CLDR retires some), and a versioned schema should not.
@extend_schema_field({"type": "string", "pattern": "^[A-Z]{3}$",
                      "description": "The ISO 4217 code of a currency in use, e.g. EUR."})
class CurrencyField(StrictCharField):
    """An ISO 4217 code of a currency in use (``EUR``); any other is refused."""

    default_error_messages = {
        "unknown": "Use the ISO 4217 code of a currency in use, in capitals, e.g. EUR.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, **kwargs)

    def to_internal_value(self, data: object) -> str:
        code = super().to_internal_value(data)
        if not is_known_currency(code):
            self.fail("unknown")
        return code
