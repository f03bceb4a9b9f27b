"""Reads of what was metered: bytes served per work and over time, and the receipts the
platform flagged for a person to look at. The dashboards share them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import BigIntegerField, Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from exchange.metering.models import MeteredOrder, Receipt
from exchange.purchases.selectors import Period, period_trunc


def _bytes() -> Coalesce:
    return Coalesce(Sum("bytes"), Value(0), output_field=BigIntegerField())


def bytes_served_by_work(work_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Bytes peers sent to buyers of each work, from every recorded order (all of them,
    including those past a licence's allowance: they were served, only not billed)."""
    rows = (MeteredOrder.objects.filter(licence__work_id__in=list(work_ids))
            .values("licence__work_id").annotate(total=_bytes()).order_by())
    return {row["licence__work_id"]: int(row["total"]) for row in rows}


@dataclass(frozen=True)
class Traffic:
    """What peers moved in a range: bytes, the orders that carried them, and how many
    distinct serving peers (devices) sent them."""

    bytes: int
    orders: int
    serving_peers: int


def traffic_between(*, since: dt.datetime, until: dt.datetime) -> Traffic:
    """Orders recorded in [since, until): the platform's own clock, not the buyer's."""
    totals = MeteredOrder.objects.filter(recorded_at__gte=since, recorded_at__lt=until).aggregate(
        total=_bytes(), orders=Count("id"), peers=Count("serving_device", distinct=True))
    return Traffic(bytes=int(totals["total"]), orders=int(totals["orders"]),
                   serving_peers=int(totals["peers"]))


def traffic_by_period(*, since: dt.datetime, until: dt.datetime,
                      by: Period) -> dict[dt.date, int]:
    """Bytes recorded per period in [since, until); empty periods are absent."""
    rows = (MeteredOrder.objects.filter(recorded_at__gte=since, recorded_at__lt=until)
            .annotate(period=period_trunc("recorded_at", by))
            .values("period").annotate(total=_bytes()).order_by("period"))
    return {row["period"]: int(row["total"]) for row in rows}


def receipts_flagged(*, since: dt.datetime, until: dt.datetime) -> QuerySet[Receipt]:
    """Receipts received in [since, until) that settlement or the marking audit flagged
    for review (claimed bytes that disagree with the orders, a copy that differs from
    the one the platform computes), newest first."""
    return (Receipt.objects.filter(needs_review=True, received_at__gte=since,
                                   received_at__lt=until)
            .select_related("licence__work", "licence__buyer").order_by("-received_at"))
