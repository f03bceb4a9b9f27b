"""Thin tasks: take an id, call a service, retry only what is transient."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from exchange.community.services import work_announce


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def work_announce_task(work_id: str) -> dict[str, int]:
    """Tell followers and matching wishlists about a work now on sale. A re-delivered or
    retried run tells nobody twice (``work_announce``)."""
    told = work_announce(work_id=work_id)
    return {"followers": told.followers, "wishlist_matches": told.wishlist_matches}
