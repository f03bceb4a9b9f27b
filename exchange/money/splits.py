"""Dividing an amount of minor units by weights without losing or creating a unit.

Largest-remainder (Hamilton) apportionment: everyone gets the floor of their exact
share, and the units left over go one each to the largest fractional remainders, ties
broken by position. The result is deterministic, sums exactly to the amount, and no part
is more than one unit away from its exact share.
"""

from __future__ import annotations

from collections.abc import Sequence


def apportion(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` (>= 0) in proportion to non-negative integer ``weights``."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if not weights:
        raise ValueError("at least one weight is needed")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    total = sum(weights)
    if total == 0:
        raise ValueError("weights must not all be zero")
    floors = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    left = amount - sum(floors)
    # Largest remainder first; on a tie, the earlier position wins (stable and documented).
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in order[:left]:
        floors[index] += 1
    return floors
