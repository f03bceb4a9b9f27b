"""The one access check for purchases: the buyer sees theirs; nobody else learns of them."""

from __future__ import annotations

import datetime as dt
import uuid

from rest_framework.exceptions import NotFound

from exchange.accounts.models import User
from exchange.purchases.models import Purchase


def purchase_get_for_buyer(*, user: User, purchase_id: object) -> Purchase:
    try:
        key = uuid.UUID(str(purchase_id))
    except ValueError:
        raise NotFound("No such purchase.") from None
    purchase = Purchase.objects.select_related("work", "licence").filter(pk=key, buyer=user).first()
    if purchase is None:
        raise NotFound("No such purchase.")
    return purchase


def _month_starts(now: dt.datetime, months: int) -> list[tuple[int, int]]:
    year, month = now.year, now.month
    out = []
    for _ in range(months):
        out.append((year, month))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


def monthly_sales(*, owner: User, currency: str, months: int = 12,
                  now: dt.datetime | None = None) -> list[tuple[str, int, int]]:
    """(``YYYY-MM``, sales count, gross minor units) of ``owner``'s works, last ``months``,
    counting purchases not refunded."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncMonth
    from django.utils import timezone

    now = now or timezone.now()
    rows = (
        Purchase.objects.filter(work__owner=owner, currency=currency)
        .exclude(state="refunded")
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(count=Count("id"), gross=Sum("price_minor"))
    )
    found = {(r["month"].year, r["month"].month): (r["count"], r["gross"]) for r in rows}
    return [(f"{y:04d}-{m:02d}", *found.get((y, m), (0, 0))) for y, m in _month_starts(now, months)]


def sales_currencies(*, owner: User) -> list[str]:
    return sorted(set(Purchase.objects.filter(work__owner=owner)
                      .values_list("currency", flat=True)))
