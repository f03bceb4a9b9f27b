"""How the agent writes money, sizes, ages and tables: the exponent of each currency,
binary units, coarse ages, aligned columns."""

from __future__ import annotations

import pytest

from agent.display import ago_text, days_text, size_text, table
from agent.money import format_amounts, format_minor


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (1250, "EUR", "€12.50"),      # two decimals
    (5, "EUR", "€0.05"),
    (-1250, "EUR", "-€12.50"),
    (1250, "KRW", "₩1,250"),      # no decimals
    (0, "JPY", "¥0"),
    (12345, "KWD", "KWD12.345"),  # three decimals
])
def test_money_uses_the_currency_s_exponent(amount: int, currency: str, text: str) -> None:
    assert format_minor(amount, currency) == text


def test_amounts_in_several_currencies_read_as_one_phrase() -> None:
    assert format_amounts({"KRW": 300, "EUR": 120}) == "€1.20 + ₩300"


@pytest.mark.parametrize(("count", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (1_048_640, "1.0 MiB"), (5 * 1024**3, "5.0 GiB"), (3 * 1024**4, "3.0 TiB"),
])
def test_sizes_are_binary_units(count: int, text: str) -> None:
    assert size_text(count) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "just now"), (59, "just now"), (60, "1 min ago"), (3599, "59 min ago"),
    (3600, "1 h ago"), (47 * 3600, "47 h ago"), (2 * 86400, "2 days ago"),
])
def test_ages_are_coarse(seconds: float, text: str) -> None:
    assert ago_text(seconds) == text


def test_days_are_singular_or_plural() -> None:
    assert (days_text(1), days_text(365)) == ("1 day", "365 days")


def test_a_table_aligns_its_columns_and_leaves_no_trailing_spaces() -> None:
    lines = table(["A", "BB", "C"], [["x", "1", ""], ["yyy", "22", "zz"]], right=(1,),
                  indent="  ")
    assert lines == [
        "  A    BB  C",
        "  x     1",
        "  yyy  22  zz",
    ]
