"""The one access check for purchases: the buyer sees theirs; nobody else learns of them."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import NotFound

from exchange.accounts.models import User
from exchange.purchases.models import Purchase


def purchase_get_for_buyer(*, user: User, purchase_id: Any) -> Purchase:
    try:
        key = uuid.UUID(str(purchase_id))
    except ValueError:
        raise NotFound("No such purchase.") from None
    purchase = Purchase.objects.select_related("work", "licence").filter(pk=key, buyer=user).first()
    if purchase is None:
        raise NotFound("No such purchase.")
    return purchase
