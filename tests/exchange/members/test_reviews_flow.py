"""The issue's member journey, in process and through the public services and API: Bob
follows Rita, Rita registers a work, Bob is notified, buys it on his laptop, uses it on
his phone, loses the laptop (moves its slot), and reviews the work; Rita is notified and
replies. The review counts once for his two licences, and it stays allowed after the
move, because one licence of his is still live."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


def test_follow_notify_buy_second_device_and_review(api, bob, rita, fund, device_of, make_work,
                                                    django_capture_on_commit_callbacks) -> None:
    from exchange.community.models import Notification
    from exchange.community.services import follow_create
    from exchange.licensing.library import licence_move, licence_reissue
    from exchange.licensing.models import Licence
    from exchange.purchases.services import purchase_create

    cache.clear()
    follow_create(follower=bob, username="rita")
    work = make_work(rita, title="Harbour at dawn")  # ready: its announcement runs
    assert Notification.objects.filter(recipient=bob, kind="new_work").count() == 1

    fund(bob, 10_000)
    _laptop_keys, laptop = device_of(bob, "laptop")
    _phone_keys, phone = device_of(bob, "phone")
    first = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id).licence
    licence_reissue(member=bob, source=first, device_id=phone.device_id)
    licence_move(member=bob, source=first, to_device_id=phone.device_id)  # the laptop is lost
    live = Licence.objects.filter(buyer=bob, work=work, revoked_at__isnull=True)
    assert [licence.device_id for licence in live] == [phone.device_id]

    client = api(bob)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(f"/api/v1/works/{work.pk}/reviews/",
                              {"rating": 5, "body": "Sharp on both screens."}, format="json",
                              HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert created.status_code == 201, created.content
    assert Notification.objects.filter(recipient=rita, kind="review").count() == 1
    again = client.post(f"/api/v1/works/{work.pk}/reviews/", {"rating": 1, "body": "Twice"},
                        format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert again.status_code == 409

    with django_capture_on_commit_callbacks(execute=True):
        replied = api(rita).put(f"/api/v1/reviews/{created.json()['id']}/reply/",
                                {"body": "Glad it travels well."}, format="json")
    assert replied.status_code == 201
    assert Notification.objects.filter(recipient=bob, kind="review_reply").count() == 1
    listed = api(None).get(f"/api/v1/works/{work.pk}/reviews/").json()
    assert listed["summary"] == {"count": 1, "total": 5, "average": "5.0"}
    assert listed["results"][0]["reply"]["body"] == "Glad it travels well."
