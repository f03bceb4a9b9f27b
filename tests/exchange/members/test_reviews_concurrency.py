"""Two first reviews by one member at the same moment (two devices, two tabs): the unique
constraint lets one in and the other gets the same 409 as a later try. PostgreSQL, real
threads, real transactions."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from exchange.core.errors import ServiceError
from exchange.reviews.models import Review

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_racing_first_reviews_store_one(bob, rita, make_work, fund, device_of) -> None:
    from exchange.purchases.services import purchase_create
    from exchange.reviews.services import review_create

    cache.clear()
    work = make_work(rita)
    fund(bob, 10_000)
    for name in ("laptop", "phone"):
        _keys, device = device_of(bob, name)
        purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def write(text: str) -> None:
        try:
            start.wait()
            outcomes.append(review_create(author=bob, work_id=work.pk, rating=3, body=text).pk)
        except ServiceError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(text,)) for text in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Review.objects.filter(author=bob).count() == 1
    assert outcomes.count("already_reviewed") == 1
