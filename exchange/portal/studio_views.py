"""The rights holder's studio dashboard: earnings over time, figures per work, payouts and
traces, and each of those tables as CSV.

Every figure comes from a selector filtered by the requesting user, so a page or a CSV
file can only ever hold that user's own works, sales, payouts and trace reports.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User, authenticated_user
from exchange.catalogue.selectors import works_owned_by
from exchange.ledger.selectors import balances_of
from exchange.payments.selectors import payouts_of, payouts_pending_totals
from exchange.payments.services import PAYOUT_ACCOUNTS, payout_minimum
from exchange.portal.charts import (
    Chart,
    Series,
    money_chart,
    next_period,
    period_label,
    period_title,
    recent_periods,
    work_rows,
)
from exchange.purchases.models import Purchase
from exchange.purchases.selectors import (
    PERIODS,
    Period,
    SalesInPeriod,
    owner_sales_by_period,
)
from exchange.tracing.selectors import trace_reports_for

HISTORY_ROWS = 50
"""Rows of payout and trace history on the page; the CSV files hold all of them."""


def _period(request: HttpRequest) -> Period:
    """The ``by`` query parameter; anything else than day, week or month is a month."""
    chosen = request.GET.get("by", "month")
    for period in PERIODS:
        if chosen == period:
            return period
    return "month"


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@dataclass
class Earnings:
    """The studio's window of periods and, per currency, the sales in each."""

    by: Period
    periods: list[dt.date]
    by_currency: dict[str, dict[dt.date, SalesInPeriod]]

    def figures(self, currency: str) -> list[tuple[str, int, int, int]]:
        """(label, sales, gross, royalty) for every period, empty ones as zeros."""
        found = self.by_currency[currency]
        out = []
        for start in self.periods:
            row = found.get(start)
            out.append((period_label(start, self.by), row.sales if row else 0,
                        row.gross_minor if row else 0, row.royalty_minor if row else 0))
        return out


def _earnings(owner: User, by: Period) -> Earnings:
    periods = recent_periods(timezone.localdate(), by)
    until = _midnight(next_period(periods[-1], by))
    by_currency: dict[str, dict[dt.date, SalesInPeriod]] = {}
    for row in owner_sales_by_period(owner=owner, since=_midnight(periods[0]), until=until,
                                     by=by):
        by_currency.setdefault(row.currency, {})[row.period] = row
    return Earnings(by=by, periods=periods, by_currency=dict(sorted(by_currency.items())))


def _earnings_chart(earnings: Earnings, currency: str) -> Chart:
    figures = earnings.figures(currency)
    captions = {
        "day": _("Earnings per day, %(currency)s"),
        "week": _("Earnings per ISO week, %(currency)s"),
        "month": _("Earnings per month, %(currency)s"),
    }
    return money_chart(
        element_id=f"earnings-{currency}", caption=captions[earnings.by] % {"currency": currency},
        currency=currency, labels=[label for label, *_rest in figures],
        x_title=period_title(earnings.by),
        counts=Series(_("Sales"), [sales for _label, sales, _g, _r in figures]),
        series=[Series(_("Gross sales"), [gross for _l, _s, gross, _r in figures]),
                Series(_("Your royalty"), [royalty for _l, _s, _g, royalty in figures])],
    )


@dataclass(frozen=True)
class Available:
    """Money the user may ask to be paid out, and the smallest payout in its currency."""

    label: str
    currency: str
    balance_minor: int
    minimum_minor: int


def _available(user: User) -> list[Available]:
    return [Available(label=a.get_kind_display(), currency=a.currency,
                      balance_minor=a.balance, minimum_minor=payout_minimum(a.currency))
            for a in balances_of(user).filter(kind__in=PAYOUT_ACCOUNTS.values(),
                                              balance__gt=0)]


@login_required
def sales(request: HttpRequest) -> HttpResponse:
    """The studio: earnings per day, week or month in each currency, then per-work sales,
    bytes and seeders, payouts (the next and the past) and trace reports."""
    user = authenticated_user(request)
    by = _period(request)
    earnings = _earnings(user, by)
    currencies = []
    for currency in earnings.by_currency:
        figures = earnings.figures(currency)
        currencies.append({
            "currency": currency,
            "sales": sum(sales for _l, sales, _g, _r in figures),
            "gross": sum(gross for _l, _s, gross, _r in figures),
            "royalty": sum(royalty for _l, _s, _g, royalty in figures),
            "chart": _earnings_chart(earnings, currency),
        })
    periods = [("day", _("Day")), ("week", _("Week")), ("month", _("Month"))]
    return render(request, "portal/sales.html", {
        "by": by, "periods": periods, "window": (period_label(earnings.periods[0], by),
                                                 period_label(earnings.periods[-1], by)),
        "currencies": currencies,
        "works": work_rows(user, works_owned_by(user)),
        "pending": payouts_pending_totals(user),
        "available": _available(user),
        "payouts": payouts_of(user)[:HISTORY_ROWS],
        "traces": trace_reports_for(user)[:HISTORY_ROWS],
        "recent": (Purchase.objects.select_related("work", "buyer", "settlement")
                   .filter(work__owner=user)[:HISTORY_ROWS]),
    })


# --- CSV --------------------------------------------------------------------------------
# Column names are fixed identifiers (as in the statements' CSV), not translated, so that
# a spreadsheet or a script reads any user's file alike; amounts are integer minor units
# beside their currency, times ISO 8601 in UTC.

def _text(value: str) -> str:
    """A user-written text cell, made inert for spreadsheets: one starting like a formula
    (=, +, -, @, tab, carriage return) is prefixed with an apostrophe (OWASP's advice
    against CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _earnings_csv(user: User, by: Period) -> Iterable[list[object]]:
    earnings = _earnings(user, by)
    yield ["period", "currency", "sales", "gross_minor", "royalty_minor"]
    for currency in earnings.by_currency:
        for label, count, gross, royalty in earnings.figures(currency):
            yield [label, currency, count, gross, royalty]


def _works_csv(user: User) -> Iterable[list[object]]:
    yield ["work_id", "title", "currency", "sales", "gross_minor", "royalty_minor",
           "bytes_served", "live_seeders"]
    for row in work_rows(user, works_owned_by(user)):
        yield [row.work.pk, _text(row.work.title), row.currency, row.sales, row.gross_minor,
               row.royalty_minor, row.bytes_served, row.live_seeders]


def _payouts_csv(user: User) -> Iterable[list[object]]:
    yield ["payout_id", "requested_at", "source", "currency", "amount_minor", "state",
           "failure_reason"]
    for payout in payouts_of(user):
        yield [payout.pk, _utc(payout.created_at), payout.source, payout.currency,
               payout.amount_minor, payout.state, _text(payout.failure_reason)]


def _traces_csv(user: User) -> Iterable[list[object]]:
    yield ["report_id", "traced_at", "file", "sha256", "size_bytes", "outcome", "work_id",
           "work_title", "licences"]
    for report in trace_reports_for(user):
        work = report.work
        yield [report.pk, _utc(report.created_at), _text(report.suspect_name),
               report.suspect_sha256, report.suspect_size, report.outcome,
               work.pk if work else "", _text(work.title) if work else "",
               " ".join(sorted(str(licence.pk) for licence in report.licences.all()))]


CSV_TABLES: dict[str, Callable[[User], Iterable[list[object]]]] = {
    "works": _works_csv,
    "payouts": _payouts_csv,
    "traces": _traces_csv,
}
"""The studio's tables by their name in ``studio/sales/<table>.csv``, but for the earnings,
which also take the period (``?by=``)."""


@login_required
def sales_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One of the studio's tables as CSV (the earnings in the page's ``by`` periods);
    an unknown table is the portal's 404."""
    user = authenticated_user(request)
    if table == "earnings":
        by = _period(request)
        rows, name = _earnings_csv(user, by), f"earnings-by-{by}"
    elif table in CSV_TABLES:
        rows, name = CSV_TABLES[table](user), table
    else:
        return render(request, "portal/not_found.html", status=404)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="peermark-{name}.csv"'
    csv.writer(response).writerows(rows)
    return response
