"""What the dashboards' charts and tables are made of: periods with year-qualified
labels; each chart as data for the browser (drawn by Chart.js,
``static/portal/dashboards.js``) plus the same figures as a table, its text alternative;
and the per-work figures that the studio's sales page and "My works" both show.

Sums stay integer minor units until here. A chart's values become major units as
decimal text ("12.50", "15000") only for drawing; the table beside it shows every amount
through the currency formatter of the active language, exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from babel.numbers import format_decimal
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.catalogue.models import Work
from exchange.metering.selectors import bytes_served_by_work
from exchange.money.currencies import format_minor, minor_unit_exponent
from exchange.money.entry import active_locale
from exchange.peers.selectors import live_seeders_by_work
from exchange.purchases.selectors import Period, owner_sales_by_work


def period_of(day: dt.date, by: Period) -> dt.date:
    """The first day of the period holding ``day``: itself, its ISO week's Monday, or
    the first of its month (as the database's truncation does)."""
    if by == "day":
        return day
    if by == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: dt.date, by: Period) -> dt.date:
    """The first day of the period after the one starting on ``start``."""
    if by == "day":
        return start + dt.timedelta(days=1)
    if by == "week":
        return start + dt.timedelta(days=7)
    return (start + dt.timedelta(days=32)).replace(day=1)


def period_starts(first: dt.date, last: dt.date, by: Period) -> list[dt.date]:
    """Every period from the one holding ``first`` to the one holding ``last``."""
    starts, current, end = [], period_of(first, by), period_of(last, by)
    while current <= end:
        starts.append(current)
        current = next_period(current, by)
    return starts


def period_label(start: dt.date, by: Period) -> str:
    """"2026-12-03", "2026-W49" (ISO 8601: the week's own year, so 2024-12-30 is
    "2025-W01") or "2026-12": never a month or week without its year."""
    if by == "day":
        return start.isoformat()
    if by == "week":
        year, week, _weekday = start.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"


RECENT = {"day": 30, "week": 12, "month": 12}
"""How many periods the studio's earnings chart shows, ending with the current one."""


def recent_periods(today: dt.date, by: Period) -> list[dt.date]:
    """The last ``RECENT[by]`` periods up to and including the one holding ``today``."""
    first = period_of(today, by)
    for _step in range(RECENT[by] - 1):
        first = period_of(first - dt.timedelta(days=1), by)
    return period_starts(first, today, by)


def period_title(by: Period) -> str:
    """The x axis's title."""
    return {"day": _("Day"), "week": _("ISO week"), "month": _("Month")}[by]


def major_text(amount_minor: int, currency: str) -> str:
    """Minor units as plain decimal text in major units, for a chart to draw: 1250 EUR is
    "12.50", 15000 KRW is "15000". Exact (Decimal), never a float."""
    value = Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))
    return format(value, "f")


@dataclass(frozen=True)
class Series:
    """One line or set of bars: its name and a value per label, in minor units (money)
    or bytes."""

    name: str
    values: Sequence[int]


@dataclass
class Chart:
    """One chart: what the browser draws (``data``, through ``json_script`` under the
    element id ``element_id``, unique in its page) and the table that says the same in text
    (``head``, ``rows``). Each series carries its values twice: as numbers to draw, and
    as the table's exact text, which the tooltips show."""

    element_id: str
    caption: str
    data: dict[str, Any]
    head: list[str]
    rows: list[list[str]]


def _chart(*, element_id: str, caption: str, kind: Literal["bar", "line"], labels: list[str],
           series: Sequence[Series], unit: dict[str, str], x_title: str, y_title: str,
           value_text: Callable[[int], str], cell_text: Callable[[int], str],
           counts: Series | None = None) -> Chart:
    locale = active_locale()
    count_head = [counts.name] if counts else []

    def count_cells(index: int) -> list[str]:
        return [str(format_decimal(counts.values[index], locale=locale))] if counts else []

    return Chart(
        element_id=element_id, caption=caption,
        data={"kind": kind, "labels": labels, "unit": unit, "locale": active_locale(),
              "x_title": x_title, "y_title": y_title,
              "series": [{"name": s.name, "values": [value_text(v) for v in s.values],
                          "texts": [cell_text(v) for v in s.values]} for s in series]},
        head=[x_title, *count_head, *(s.name for s in series)],
        rows=[[label, *count_cells(i), *(cell_text(s.values[i]) for s in series)]
              for i, label in enumerate(labels)],
    )


def money_chart(*, element_id: str, caption: str, currency: str, labels: list[str],
                series: Sequence[Series], x_title: str, counts: Series | None = None,
                kind: Literal["bar", "line"] = "bar") -> Chart:
    """A chart of amounts in one currency; its y axis is titled with the currency.
    ``counts`` (how many sales, say) go into the table only: a count and an amount on
    one axis would mislead."""
    locale = active_locale()
    return _chart(
        element_id=element_id, caption=caption, kind=kind, labels=labels, series=series,
        unit={"type": "currency", "currency": currency}, x_title=x_title,
        y_title=_("Amount (%(currency)s)") % {"currency": currency},
        value_text=lambda minor: major_text(minor, currency),
        cell_text=lambda minor: format_minor(minor, currency, locale), counts=counts,
    )


def bytes_chart(*, element_id: str, caption: str, labels: list[str], series: Sequence[Series],
                x_title: str) -> Chart:
    """A chart of byte counts; the table gives them exactly."""
    locale = active_locale()
    return _chart(
        element_id=element_id, caption=caption, kind="bar", labels=labels, series=series,
        unit={"type": "bytes"}, x_title=x_title, y_title=_("Bytes"), value_text=str,
        cell_text=lambda n: str(format_decimal(n, locale=locale)),
    )


def count_chart(*, element_id: str, caption: str, labels: list[str], series: Sequence[Series],
                x_title: str, y_title: str, kind: Literal["bar", "line"] = "line") -> Chart:
    """A chart of whole counts (units done, say); the table gives them exactly."""
    locale = active_locale()
    return _chart(
        element_id=element_id, caption=caption, kind=kind, labels=labels, series=series,
        unit={"type": "count"}, x_title=x_title, y_title=y_title, value_text=str,
        cell_text=lambda n: str(format_decimal(n, locale=locale)),
    )


@dataclass(frozen=True)
class WorkRow:
    """One line of the per-work table: a work's sales in one currency, and what peers
    do with it (the same bytes and seeders on each of a work's currency lines)."""

    work: Work
    currency: str
    sales: int
    gross_minor: int
    royalty_minor: int
    bytes_served: int
    live_seeders: int


def work_rows(owner: User, works: Iterable[Work]) -> list[WorkRow]:
    """Each of ``works`` (of ``owner``: the sums are only ever ``owner``'s sales), in
    their order, with its all-time figures; a work never sold has one line of zeros in
    its current currency. The studio's sales page and "My works" show these."""
    works = list(works)
    ids = [work.pk for work in works]
    sales: dict[object, list[tuple[str, int, int, int]]] = {}
    for row in owner_sales_by_work(owner=owner):
        sales.setdefault(row.work_id, []).append(
            (row.currency, row.sales, row.gross_minor, row.royalty_minor))
    served = bytes_served_by_work(ids)
    seeders = live_seeders_by_work(ids)
    return [
        WorkRow(work=work, currency=currency, sales=count, gross_minor=gross,
                royalty_minor=royalty, bytes_served=served.get(work.pk, 0),
                live_seeders=seeders.get(work.pk, 0))
        for work in works
        for currency, count, gross, royalty in sales.get(work.pk, [(work.currency, 0, 0, 0)])
    ]
