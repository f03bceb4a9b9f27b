"""Reads of trace reports; a report is its owner's alone."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import QuerySet, Sum

from exchange.accounts.models import User
from exchange.licensing.models import Licence
from exchange.metering.models import MeteredOrder
from exchange.tracing.models import TraceReport


def trace_reports_for(owner: User) -> QuerySet[TraceReport]:
    return (TraceReport.objects.filter(owner=owner).select_related("work")
            .prefetch_related("licences__buyer"))


def trace_report_get_for_owner(*, owner: User, report_id: int | str) -> TraceReport | None:
    """The report if ``owner`` made it; None for anyone else's, as for one that is not there."""
    try:
        key = int(report_id)
    except (TypeError, ValueError):
        return None
    return trace_reports_for(owner).filter(pk=key).first()


class ServedBytes(TypedDict):
    serving_user__username: str
    bytes: int


def licence_served_by(licence: Licence) -> list[ServedBytes]:
    """Who served the pieces of this licence's copy, and how many bytes each."""
    served = (MeteredOrder.objects.filter(licence=licence)
              .values("serving_user__username")
              .annotate(bytes=Sum("bytes"))
              .order_by("-bytes"))
    return [ServedBytes(serving_user__username=row["serving_user__username"],
                        bytes=row["bytes"]) for row in served]
