"""Double-submit protection for portal forms that move money.

Each such form carries a fresh random key; the POST claims it in the same table (and
transaction) as API idempotency keys, so a double click, a reload or a back-and-resubmit
performs the action once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, transaction

from exchange.accounts.models import User
from exchange.api.models import IdempotencyRecord

T = TypeVar("T")


def form_key() -> str:
    return secrets.token_urlsafe(16)


def run_once(*, user: User, key: str, action: Callable[[], T]) -> tuple[bool, T | None]:
    """Run ``action`` unless this form key was used; (ran, result). A failing action
    releases the key with everything else it wrote."""
    if not key or len(key) > 64:
        return False, None
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(user=user, key=f"portal:{key}", fingerprint="portal",
                                             state=IdempotencyRecord.State.DONE)
            return True, action()
    except IntegrityError:
        return False, None
