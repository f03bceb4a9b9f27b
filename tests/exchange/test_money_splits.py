"""Splits never lose or create a minor unit, and stay within one unit of the exact share."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money.splits import apportion


@given(
    amount=st.integers(min_value=0, max_value=2**63 - 1),
    weights=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=20).filter(
        lambda ws: sum(ws) > 0
    ),
)
def test_the_parts_sum_to_the_amount_and_each_is_within_one_unit(amount, weights) -> None:
    parts = apportion(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(amount * weight, total)
        assert exact - 1 < part < exact + 1
        assert part >= 0
        if weight == 0:
            assert part == 0


@given(
    amount=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=8),
)
def test_it_is_deterministic(amount, weights) -> None:
    assert apportion(amount, weights) == apportion(amount, list(weights))


def test_ties_go_to_the_earlier_position() -> None:
    assert apportion(1, [1, 1]) == [1, 0]
    assert apportion(100, [1, 1, 1]) == [34, 33, 33]


@pytest.mark.parametrize(
    ("amount", "weights"), [(-1, [1]), (5, []), (5, [0, 0]), (5, [1, -1])]
)
def test_it_refuses_what_it_cannot_split(amount, weights) -> None:
    with pytest.raises(ValueError, match=r"must|needed"):
        apportion(amount, weights)
