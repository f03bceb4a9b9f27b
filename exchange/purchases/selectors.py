"""The one access check for purchases (the buyer sees theirs; nobody else learns of
them), and the sums of sales the dashboards show: a rights holder's, per period and per
work, and the platform's volume over a range."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

from django.db.models import (
    BigIntegerField,
    Count,
    DateField,
    Expression,
    Func,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound

from exchange.accounts.models import User
from exchange.purchases.models import Purchase, PurchaseState, Settlement


def purchase_get_for_buyer(*, user: User, purchase_id: object) -> Purchase:
    try:
        key = uuid.UUID(str(purchase_id))
    except ValueError:
        raise NotFound(_("No such purchase.")) from None
    purchase = Purchase.objects.select_related("work", "licence").filter(pk=key, buyer=user).first()
    if purchase is None:
        raise NotFound(_("No such purchase."))
    return purchase


Period = Literal["day", "week", "month"]
"""How the dashboards group money over time: by calendar day, ISO week or month."""

PERIODS: tuple[Period, ...] = ("day", "week", "month")

_TRUNCS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def period_trunc(field: str, by: Period) -> Func:
    """The database's own truncation of ``field`` to the start of its day, ISO week
    (Monday) or month, as a date: grouping happens in SQL, whatever the number of rows."""
    return _TRUNCS[by](field, output_field=DateField())


def _minor(expression: str) -> Coalesce:
    return Coalesce(Sum(expression), Value(0), output_field=BigIntegerField())


# What a sale is worth to the seller, whatever happened to it since: a refunded purchase
# is no sale at all; a partly refunded one counts for what the buyer finally paid (a
# held one for its whole price, still in escrow). The royalty is known once it settled.
def _gross() -> Expression:
    return _minor("price_minor") - _minor("settlement__refunded_minor")


def _sales_of(owner: User) -> QuerySet[Purchase]:
    return Purchase.objects.filter(work__owner=owner).exclude(state=PurchaseState.REFUNDED)


@dataclass(frozen=True)
class SalesInPeriod:
    """One period's sales of one owner's works in one currency."""

    period: dt.date
    currency: str
    sales: int
    gross_minor: int
    royalty_minor: int


def owner_sales_by_period(*, owner: User, since: dt.datetime, until: dt.datetime,
                          by: Period) -> list[SalesInPeriod]:
    """``owner``'s sales made in [since, until), per period (of the sale's date) and
    currency; periods without a sale are absent (the caller fills them)."""
    rows = (_sales_of(owner).filter(created_at__gte=since, created_at__lt=until)
            .annotate(period=period_trunc("created_at", by))
            .values("period", "currency")
            .annotate(sales=Count("id"), gross=_gross(),
                      royalty=_minor("settlement__royalty_minor"))
            .order_by("period", "currency"))
    return [SalesInPeriod(period=r["period"], currency=r["currency"], sales=r["sales"],
                          gross_minor=int(r["gross"]), royalty_minor=int(r["royalty"]))
            for r in rows]


@dataclass(frozen=True)
class WorkSales:
    """All-time sales of one work in one currency (a work's currency can change)."""

    work_id: uuid.UUID
    currency: str
    sales: int
    gross_minor: int
    royalty_minor: int


def owner_sales_by_work(*, owner: User) -> list[WorkSales]:
    """Every sale of ``owner``'s works, summed per work and currency."""
    rows = (_sales_of(owner).values("work_id", "currency")
            .annotate(sales=Count("id"), gross=_gross(),
                      royalty=_minor("settlement__royalty_minor"))
            .order_by("work_id", "currency"))
    return [WorkSales(work_id=r["work_id"], currency=r["currency"], sales=r["sales"],
                      gross_minor=int(r["gross"]), royalty_minor=int(r["royalty"]))
            for r in rows]


@dataclass
class Volume:
    """The platform's money in one currency over a range, as its billing dashboard shows
    it. Gross volume is every purchase made in the range at its price, refunded or not
    (refunds are their own figure, by the date of the refund); fees are those of the
    settlements made in the range; escrow is what was held when the range ended."""

    currency: str
    sales: int = 0
    gross_minor: int = 0
    fees_minor: int = 0
    refunds: int = 0
    refunded_minor: int = 0
    held: int = 0
    held_minor: int = 0


def platform_volume(*, since: dt.datetime, until: dt.datetime) -> dict[str, Volume]:
    """Gross volume, fees, refunds and escrow per currency for [since, until)."""
    out: dict[str, Volume] = {}

    def of(currency: str) -> Volume:
        return out.setdefault(currency, Volume(currency=currency))

    made = Purchase.objects.filter(created_at__gte=since, created_at__lt=until)
    for row in made.values("currency").annotate(n=Count("id"), minor=_minor("price_minor")):
        volume = of(row["currency"])
        volume.sales, volume.gross_minor = row["n"], int(row["minor"])
    settled = Settlement.objects.filter(created_at__gte=since, created_at__lt=until)
    for fee in settled.values("purchase__currency").annotate(minor=_minor("fee_minor")):
        of(fee["purchase__currency"]).fees_minor = int(fee["minor"])
    # Refunds: whole purchases voided in the range, and the unsettled parts of partial
    # settlements made in it.
    voided = Purchase.objects.filter(state=PurchaseState.REFUNDED, closed_at__gte=since,
                                     closed_at__lt=until)
    for row in voided.values("currency").annotate(n=Count("id"), minor=_minor("price_minor")):
        volume = of(row["currency"])
        volume.refunds += row["n"]
        volume.refunded_minor += int(row["minor"])
    partial = settled.filter(refunded_minor__gt=0)
    for part in partial.values("purchase__currency").annotate(n=Count("id"),
                                                              minor=_minor("refunded_minor")):
        volume = of(part["purchase__currency"])
        volume.refunds += part["n"]
        volume.refunded_minor += int(part["minor"])
    held = Purchase.objects.filter(created_at__lt=until).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=until))
    for row in held.values("currency").annotate(n=Count("id"), minor=_minor("price_minor")):
        volume = of(row["currency"])
        volume.held, volume.held_minor = row["n"], int(row["minor"])
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class VolumeInPeriod:
    """One period's gross volume (by purchase date) and fees (by settlement date)."""

    period: dt.date
    currency: str
    gross_minor: int
    fees_minor: int


def platform_volume_by_period(*, since: dt.datetime, until: dt.datetime,
                              by: Period) -> list[VolumeInPeriod]:
    """Gross volume and fees per period and currency in [since, until); empty periods
    are absent."""
    figures: dict[tuple[dt.date, str], list[int]] = {}
    made = (Purchase.objects.filter(created_at__gte=since, created_at__lt=until)
            .annotate(period=period_trunc("created_at", by))
            .values("period", "currency").annotate(minor=_minor("price_minor"))
            .order_by("period", "currency"))
    for row in made:
        figures.setdefault((row["period"], row["currency"]), [0, 0])[0] = int(row["minor"])
    fees = (Settlement.objects.filter(created_at__gte=since, created_at__lt=until)
            .annotate(period=period_trunc("created_at", by))
            .values("period", "purchase__currency").annotate(minor=_minor("fee_minor"))
            .order_by("period", "purchase__currency"))
    for fee in fees:
        key = (fee["period"], fee["purchase__currency"])
        figures.setdefault(key, [0, 0])[1] = int(fee["minor"])
    return [VolumeInPeriod(period=period, currency=currency, gross_minor=gross, fees_minor=fee)
            for (period, currency), (gross, fee) in sorted(figures.items())]
