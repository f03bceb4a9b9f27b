"""Money limits (a price's typo guard, a top-up's ceiling, a payout's floor) in each
currency's own terms.

The limits are set in major units, but a major unit is not worth the same everywhere:
10,000 as a top-up ceiling is sensible in euros and absurd in won (about €7), and a
payout floor of 10 would let a Korean member pay out ₩10. Without exchange rates (the
platform does not convert), each currency whose major unit is worth far less than a
euro or a dollar has a scale: the limit in that currency is the setting times the scale.
The scales are deliberately round (KRW 1,000; JPY 100) and an operator may change them
(`PEERMARK_MONEY_LIMIT_SCALES`, e.g. "KRW=1000,JPY=100,IDR=10000").
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from exchange.money.currencies import minor_unit_exponent


def limit_scale(currency: str) -> int:
    """How many of this currency's major units a limit's one major unit stands for."""
    scales: dict[str, int] = settings.MONEY_LIMIT_SCALES
    return int(scales.get(currency, 1))


def limit_minor(major: int, currency: str) -> int:
    """A limit set in major units, as minor units of ``currency`` (scaled)."""
    return int(Decimal(major * limit_scale(currency)).scaleb(minor_unit_exponent(currency)))
