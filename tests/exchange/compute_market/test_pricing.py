"""The compute market's money arithmetic, against values worked out by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.compute_market.pricing import (
    SCALE,
    Accrued,
    device_accrual,
    fee_accrual,
    final_top_ups,
    job_budget,
)


def test_budget_is_the_ceiling_of_caps_times_replication_times_price_plus_fee() -> None:
    # 3 units of 10^9 fuel, 2 devices, 7 minor units per 10^12 fuel, fee 10%:
    # 3 x 10^9 x 2 x 7 / 10^12 x 1.1 = 0.0462 -> 1 (never less than the exact value).
    assert job_budget(fuel_caps=[10**9] * 3, replication=2, price_per_tfuel=7,
                      fee_bps=1000) == 1
    # 10^12 fuel x 2 x 500 x 1.1 = 1,100 exactly.
    assert job_budget(fuel_caps=[10**12], replication=2, price_per_tfuel=500,
                      fee_bps=1000) == 1_100


def test_accrual_pays_whole_units_as_they_accrue_and_keeps_the_fraction() -> None:
    start = Accrued(paid=0, remainder=0)
    # 4 x 10^11 fuel at 5 per 10^12: 2.0 minor units, exactly.
    after, due = start.add(device_accrual(fuel=4 * 10**11, price_per_tfuel=5))
    assert (after, due) == (Accrued(2, 0), 2)
    # 10^11 fuel at 5: 0.5 -> nothing due yet, half a unit kept.
    after, due = after.add(device_accrual(fuel=10**11, price_per_tfuel=5))
    assert (after, due) == (Accrued(2, SCALE // 2), 0)
    after, due = after.add(device_accrual(fuel=10**11, price_per_tfuel=5))
    assert (after, due) == (Accrued(3, 0), 1)


def test_fee_is_a_share_of_every_agreeing_device() -> None:
    # 2 devices x 10^12 fuel x 3 per 10^12 = 6; fee 10% = 0.6 -> 0.6 x SCALE.
    assert fee_accrual(fuel=10**12, devices=2, price_per_tfuel=3, fee_bps=1000) == (
        6 * SCALE // 10)


def test_fractions_at_the_end_go_to_the_largest_remainders() -> None:
    # Exact values 1.7, 2.2 and 0.6: total 4.5, charged 4. Floors 1 + 2 + 0 = 3; one unit
    # left, to the largest fraction (0.7, the first party).
    parties = {"a": Accrued(1, 7 * SCALE // 10), "b": Accrued(2, 2 * SCALE // 10),
               "fee": Accrued(0, 6 * SCALE // 10)}
    assert final_top_ups(parties, ["a", "b", "fee"]) == {"a": 1}
    # A tie goes to the earlier party: 0.5 and 0.5 with one unit left.
    tie = {"a": Accrued(0, SCALE // 2), "b": Accrued(0, SCALE // 2)}
    assert final_top_ups(tie, ["b", "a"]) == {"b": 1}


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="basis points"):
        job_budget(fuel_caps=[1], replication=2, price_per_tfuel=1, fee_bps=10_001)
    with pytest.raises(ValueError, match="at least one minor unit"):
        job_budget(fuel_caps=[1], replication=2, price_per_tfuel=0, fee_bps=0)
    with pytest.raises(ValueError, match="not negative"):
        Accrued(0, 0).add(-1)


@given(st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 2)), min_size=1,
                max_size=40),
       st.integers(1, 10**6), st.integers(0, 10_000))
def test_every_party_ends_within_one_unit_of_its_exact_value_and_the_sum_is_the_floor(
        units: list[tuple[int, int]], price: int, fee_bps: int) -> None:
    """Units of random fuel, each agreed by two of three members; accrue as the market
    does; at the end, every party holds its exact value rounded down or up, and the
    total is the floor of the exact total (checked with fractions, not the module)."""
    members = ["m0", "m1", "m2"]
    standing = {key: Accrued(0, 0) for key in [*members, "fee"]}
    exact = dict.fromkeys(standing, Fraction(0))
    for fuel, left_out in units:
        agreeing = [m for i, m in enumerate(members) if i != left_out]
        for member in agreeing:
            standing[member], _ = standing[member].add(device_accrual(fuel=fuel,
                                                                      price_per_tfuel=price))
            exact[member] += Fraction(fuel * price, 10**12)
        standing["fee"], _ = standing["fee"].add(fee_accrual(
            fuel=fuel, devices=2, price_per_tfuel=price, fee_bps=fee_bps))
        exact["fee"] += Fraction(2 * fuel * price * fee_bps, 10**12 * 10_000)
    top_ups = final_top_ups(standing, [*members, "fee"])
    final = {key: standing[key].paid + top_ups.get(key, 0) for key in standing}
    for key, value in final.items():
        assert exact[key] - 1 < value <= exact[key] + 1
        assert value in (int(exact[key]), -(-exact[key].numerator // exact[key].denominator))
    assert sum(final.values()) == int(sum(exact.values()))
    budget = job_budget(fuel_caps=[f for f, _ in units], replication=2, price_per_tfuel=price,
                        fee_bps=fee_bps)
    assert sum(final.values()) <= budget
