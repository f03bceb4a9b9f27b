"""Reads of payments for the dashboards: a person's payouts, the platform's payout queue,
failed top-ups and the webhook events that did not go as planned."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from exchange.accounts.models import User
from exchange.payments.models import (
    Payout,
    PayoutState,
    TopUp,
    TopUpState,
    WebhookEvent,
)


@dataclass(frozen=True)
class CurrencyTotal:
    """A count and a sum in one currency."""

    currency: str
    count: int
    amount_minor: int


def _per_currency(payments: QuerySet[Payout] | QuerySet[TopUp]) -> list[CurrencyTotal]:
    rows = (payments.values("currency")
            .annotate(n=Count("id"),
                      minor=Coalesce(Sum("amount_minor"), Value(0),
                                     output_field=BigIntegerField()))
            .order_by("currency"))
    return [CurrencyTotal(currency=row["currency"], count=row["n"],
                          amount_minor=int(row["minor"])) for row in rows]


def payouts_of(user: User) -> QuerySet[Payout]:
    """``user``'s payouts, newest first."""
    return Payout.objects.filter(user=user).order_by("-created_at")


def payouts_pending_totals(user: User) -> list[CurrencyTotal]:
    """What the provider is paying ``user`` now: payouts requested and not yet paid or
    returned, per currency. Payouts are made when their holder asks (the platform has no
    schedule of its own), so these are the next money out."""
    return _per_currency(payouts_of(user).filter(state=PayoutState.PENDING))


def payout_queue(*, since: dt.datetime, until: dt.datetime) -> QuerySet[Payout]:
    """Payouts for staff to watch: every one still pending, whenever requested, and those
    requested in [since, until) that the provider returned (failed), oldest first. (By the
    request's date: the state changes by a compare-and-swap ``update()``, which leaves
    ``updated_at`` as it was.)"""
    return (Payout.objects.filter(
        Q(state=PayoutState.PENDING)
        | Q(state=PayoutState.RETURNED, created_at__gte=since, created_at__lt=until))
        .select_related("user").order_by("state", "created_at"))


def topups_failed(*, since: dt.datetime, until: dt.datetime) -> QuerySet[TopUp]:
    """Top-ups started in [since, until) that the provider declined, newest first."""
    return (TopUp.objects.filter(state=TopUpState.FAILED, created_at__gte=since,
                                 created_at__lt=until)
            .select_related("user").order_by("-created_at"))


def topups_failed_totals(*, since: dt.datetime, until: dt.datetime) -> list[CurrencyTotal]:
    return _per_currency(topups_failed(since=since, until=until))


# Outcomes ``webhook_receive`` stores for an event that changed nothing: the payment had
# already moved on (a late or out-of-order delivery).
_IGNORED = "ignored"


def webhook_events_to_review(*, since: dt.datetime,
                             until: dt.datetime) -> QuerySet[WebhookEvent]:
    """Events received in [since, until) that reported a failed payment or changed
    nothing, newest first. Deliveries refused outright (a bad signature, an unknown
    payment, an amount that does not match) write no row: the provider keeps those."""
    return (WebhookEvent.objects.filter(received_at__gte=since, received_at__lt=until)
            .filter(Q(event_type__endswith=".failed") | Q(outcome__startswith=_IGNORED))
            .order_by("-received_at"))


@dataclass(frozen=True)
class WebhookCounts:
    received: int
    failed_payments: int
    ignored: int


def webhook_counts(*, since: dt.datetime, until: dt.datetime) -> WebhookCounts:
    """How many events were received in [since, until), how many reported a failed
    payment, and how many changed nothing."""
    totals = WebhookEvent.objects.filter(received_at__gte=since, received_at__lt=until).aggregate(
        received=Count("id"),
        failed=Count("id", filter=Q(event_type__endswith=".failed")),
        ignored=Count("id", filter=Q(outcome__startswith=_IGNORED)),
    )
    return WebhookCounts(received=int(totals["received"]), failed_payments=int(totals["failed"]),
                         ignored=int(totals["ignored"]))
