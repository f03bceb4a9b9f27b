"""The platform's billing dashboard, for staff: money per currency over a chosen range
(gross volume, fees from sales and from compute jobs, refunds, escrow, failed top-ups),
the payout queue, webhook events and receipts that need a person, and what peers moved."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from exchange.accounts.models import authenticated_user
from exchange.core.errors import ServiceError
from exchange.ledger.models import EntryKind
from exchange.ledger.selectors import platform_fees_by_period
from exchange.metering.selectors import receipts_flagged, traffic_between, traffic_by_period
from exchange.money.currencies import format_minor, is_known_currency
from exchange.money.entry import active_locale
from exchange.payments.models import Payout
from exchange.payments.retry import payout_retry as retry_payout
from exchange.payments.selectors import (
    payout_queue,
    topups_failed,
    topups_failed_totals,
    webhook_counts,
    webhook_events_to_review,
)
from exchange.peers.selectors import peers_live_count
from exchange.portal.charts import (
    Chart,
    Series,
    bytes_chart,
    money_chart,
    period_label,
    period_starts,
    period_title,
)
from exchange.purchases.selectors import (
    Period,
    Volume,
    period_trunc,
    platform_volume,
    platform_volume_by_period,
)

View = Callable[..., HttpResponse]

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 5 * 366
LIST_ROWS = 100
"""At most this many rows in each list (payout queue, failed top-ups, events, receipts)."""


def staff_only(view: View) -> View:
    """Staff only: an anonymous visitor goes to the portal's login page (not the Django
    admin's), anyone else signed in gets the portal's 403 page."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not authenticated_user(request).is_staff:
            return render(request, "portal/forbidden.html",
                          {"reason": _("Admins only: this dashboard is for the platform's "
                                       "staff.")}, status=403)
        return view(request, *args, **kwargs)

    return login_required(checked)


@dataclass(frozen=True)
class Range:
    """Whole days, ``first`` to ``last`` included, in the site's time zone."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def since(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.first, dt.time.min))

    @property
    def until(self) -> dt.datetime:
        """The first moment after the range."""
        return timezone.make_aware(dt.datetime.combine(self.last + dt.timedelta(days=1),
                                                       dt.time.min))

    @property
    def period(self) -> Period:
        """Days for up to two months, ISO weeks up to a year, months beyond."""
        if self.days <= 62:
            return "day"
        return "week" if self.days <= 366 else "month"


def _last_days(days: int) -> Range:
    today = timezone.localdate()
    return Range(first=today - dt.timedelta(days=days - 1), last=today)


def chosen_range(query: dict[str, str]) -> tuple[Range, str]:
    """The range the query asks for (``days`` from the presets, or ``from`` and ``to`` as
    the date inputs send them, YYYY-MM-DD; an empty ``to`` is today, an empty ``from``
    thirty days before ``to``), or the last thirty days and a message saying what was
    wrong."""
    if query.get("days") in {str(days) for days in PRESETS}:
        return _last_days(int(query["days"])), ""
    given_from, given_to = query.get("from", "").strip(), query.get("to", "").strip()
    if not given_from and not given_to:
        return _last_days(DEFAULT_DAYS), ""
    default = _last_days(DEFAULT_DAYS)
    try:
        last = dt.date.fromisoformat(given_to) if given_to else timezone.localdate()
        first = (dt.date.fromisoformat(given_from) if given_from
                 else last - dt.timedelta(days=DEFAULT_DAYS - 1))
    except ValueError:
        return default, _("Enter the dates as year-month-day, for example 2026-12-03. "
                          "Showing the last 30 days instead.")
    if first > last:
        return default, _("The start date is after the end date. Showing the last 30 days "
                          "instead.")
    chosen = Range(first=first, last=last)
    if chosen.days > MAX_DAYS:
        return default, _("Choose at most %(days)d days. Showing the last 30 days "
                          "instead.") % {"days": MAX_DAYS}
    return chosen, ""


def _volume_chart(span: Range, currency: str, labels: list[str],
                  rows: dict[tuple[dt.date, str], tuple[int, int]],
                  starts: list[dt.date], *,
                  compute_fees: dict[tuple[dt.date, str], int]) -> Chart:
    captions = {
        "day": _("Gross volume and fees per day, %(currency)s"),
        "week": _("Gross volume and fees per ISO week, %(currency)s"),
        "month": _("Gross volume and fees per month, %(currency)s"),
    }
    series = [Series(_("Gross volume"), [rows.get((s, currency), (0, 0))[0] for s in starts]),
              Series(_("Fees"), [rows.get((s, currency), (0, 0))[1] for s in starts])]
    if any(currency == code for _start, code in compute_fees):
        series.append(Series(_("Compute fees"),
                             [compute_fees.get((s, currency), 0) for s in starts]))
    return money_chart(
        element_id=f"volume-{currency}", kind="line",
        caption=captions[span.period] % {"currency": currency}, currency=currency,
        labels=labels, x_title=period_title(span.period), series=series,
    )


def _event_rows(span: Range) -> list[dict[str, Any]]:
    """Webhook events to look at, with the payment they name as the payload gives it."""
    locale, out = active_locale(), []
    for event in webhook_events_to_review(since=span.since, until=span.until)[:LIST_ROWS]:
        data = event.payload.get("data", {}) if isinstance(event.payload, dict) else {}
        amount, currency = data.get("amount_minor"), data.get("currency")
        shown = ""
        if isinstance(amount, int) and isinstance(currency, str) and is_known_currency(
                currency):
            shown = format_minor(amount, currency, locale)
        out.append({"event": event, "reference": data.get("reference", ""),
                    "amount": shown,
                    "reason": data.get("failure_reason", "")})
    return out


@staff_only
def dashboard(request: HttpRequest) -> HttpResponse:
    """Stripe-like: per currency, what came in, what the platform earned, what went back
    and what is held; then what needs a person, and what the peers did, over the range."""
    span, range_error = chosen_range(request.GET.dict())
    by = span.period
    volumes = platform_volume(since=span.since, until=span.until)
    failed = {total.currency: total for total in
              topups_failed_totals(since=span.since, until=span.until)}
    # The compute market's fees reach the platform's fee account in COMPUTE_PAY entries,
    # not in settlements: their own figure, by the date each payment was posted.
    compute_fees = platform_fees_by_period(
        entry_kind=EntryKind.COMPUTE_PAY, since=span.since, until=span.until,
        period=period_trunc("entry__created_at", by))
    compute_totals: dict[str, int] = {}
    for (_start, currency), minor in compute_fees.items():
        compute_totals[currency] = compute_totals.get(currency, 0) + minor
    for currency in [*failed, *compute_totals]:
        volumes.setdefault(currency, Volume(currency=currency))
    starts = period_starts(span.first, span.last, by)
    labels = [period_label(start, by) for start in starts]
    rows = {(r.period, r.currency): (r.gross_minor, r.fees_minor) for r in
            platform_volume_by_period(since=span.since, until=span.until, by=by)}
    currencies = [{"volume": volume, "failed": failed.get(currency),
                   "compute_fees_minor": compute_totals.get(currency, 0),
                   "chart": _volume_chart(span, currency, labels, rows, starts,
                                          compute_fees=compute_fees)}
                  for currency, volume in sorted(volumes.items())]
    per_period = traffic_by_period(since=span.since, until=span.until, by=by)
    traffic_captions = {"day": _("Bytes served per day"), "week": _("Bytes served per ISO week"),
                        "month": _("Bytes served per month")}
    return render(request, "portal/dashboard.html", {
        "range": span, "range_error": range_error, "presets": PRESETS,
        "preset": span.days if span.last == timezone.localdate() else None,
        "currencies": currencies,
        "queue": payout_queue(since=span.since, until=span.until)[:LIST_ROWS],
        "failed_topups": topups_failed(since=span.since, until=span.until)[:LIST_ROWS],
        "webhooks": webhook_counts(since=span.since, until=span.until),
        "events": _event_rows(span),
        "receipts": receipts_flagged(since=span.since, until=span.until)[:LIST_ROWS],
        "traffic": traffic_between(since=span.since, until=span.until),
        "live_peers": peers_live_count(),
        "traffic_chart": bytes_chart(
            element_id="traffic", caption=traffic_captions[by], labels=labels,
            x_title=period_title(by),
            series=[Series(_("Bytes served"), [per_period.get(s, 0) for s in starts])]),
    })


@staff_only
@require_POST
def payout_retry(request: HttpRequest, payout_id: str) -> HttpResponse:
    """Staff asking the provider again for a payout it has not answered
    (``exchange/payments/retry.py``: same reference, so a second ask pays nothing twice)."""
    key = _uuid_or_none(payout_id)
    payout = Payout.objects.filter(pk=key).first() if key else None
    if payout is None:
        return render(request, "portal/not_found.html", status=404)
    try:
        retry_payout(payout=payout, actor=authenticated_user(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Asked the payment provider again for this payout; its "
                                    "webhook will mark it paid or returned."))
    return redirect("portal:dashboard")


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
