"""Splits never lose or create a minor unit, and stay within one unit of the exact share."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money.splits import apportion, sale_split


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


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    fee_bps=st.integers(min_value=0, max_value=5000),
    seeding_bps=st.integers(min_value=0, max_value=5000),
    peer_bytes=st.dictionaries(st.integers(min_value=1, max_value=50),
                               st.integers(min_value=0, max_value=10**10), max_size=6),
    size=st.integers(min_value=1, max_value=10**10),
)
def test_a_sale_split_loses_nothing_and_follows_the_bytes(
    amount, fee_bps, seeding_bps, peer_bytes, size
) -> None:
    split = sale_split(amount, fee_bps=fee_bps, seeding_bps=seeding_bps, peer_bytes=peer_bytes,
                       size=size)
    assert split.royalty + split.fee + split.seeding == amount
    assert abs(split.fee - Fraction(amount * fee_bps, 10_000)) < 1
    whole = max(sum(peer_bytes.values()), size)
    for peer, served in peer_bytes.items():
        assert abs(split.peers[peer] - Fraction(amount * seeding_bps * served, 10_000 * whole)) < 1
    assert min([split.royalty, split.fee, *split.peers.values()]) >= 0


def test_a_worked_example() -> None:
    # 10.00 at 10% fee and 10% seeding; three peers served 50%, 30%, 20% of the work.
    split = sale_split(1000, fee_bps=1000, seeding_bps=1000, peer_bytes={3: 20, 1: 50, 2: 30},
                       size=100)
    assert (split.royalty, split.fee) == (800, 100)
    assert split.peers == {1: 50, 2: 30, 3: 20}


def test_bytes_no_peer_was_paid_for_go_to_the_rights_holder() -> None:
    split = sale_split(1000, fee_bps=1000, seeding_bps=1000, peer_bytes={1: 25}, size=100)
    assert (split.royalty, split.fee, split.peers) == (875, 100, {1: 25})
