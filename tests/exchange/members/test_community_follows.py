"""Following rights holders, the feed, and the announcement of a new work to followers."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import override_settings

from exchange.accounts.models import User
from exchange.catalogue.models import Work, WorkStatus
from exchange.community.models import Follow, Notification
from exchange.community.services import work_announce
from exchange.community.tasks import work_announce_task

pytestmark = pytest.mark.django_db


def test_a_member_follows_a_rights_holder_once(api: Any, bob: User, rita: User) -> None:
    client = api(bob)
    first = client.post("/api/v1/follows/", {"username": "rita"}, format="json")
    again = client.post("/api/v1/follows/", {"username": "rita"}, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json()["username"] == "rita"
    assert Follow.objects.filter(follower=bob, rights_holder=rita).count() == 1
    listed = client.get("/api/v1/follows/").json()
    assert [f["username"] for f in listed["results"]] == ["rita"]
    assert api(None).get("/api/v1/members/rita/").json()["follower_count"] == 1


def test_following_with_a_replayed_key_replays(api: Any, bob: User, rita: User) -> None:
    client = api(bob)
    headers = {"Idempotency-Key": "follow-rita"}
    first = client.post("/api/v1/follows/", {"username": "rita"}, format="json", headers=headers)
    replay = client.post("/api/v1/follows/", {"username": "rita"}, format="json",
                         headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/follows/", {"username": "rob"}, format="json", headers=headers)
    assert other.status_code == 422  # the same key for another request


def test_nobody_follows_themselves(api: Any, rita: User) -> None:
    response = api(rita).post("/api/v1/follows/", {"username": "rita"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "follow_self"
    assert not Follow.objects.exists()


def test_only_rights_holders_are_followed(api: Any, bob: User, carol: User) -> None:
    response = api(bob).post("/api/v1/follows/", {"username": "carol"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_rights_holder"
    assert not Follow.objects.exists()


@pytest.mark.parametrize("username", ["nobody", "", "x" * 151, 5, None, ["rita"]])
def test_following_nobody_is_refused(api: Any, bob: User, rita: User, username: object) -> None:
    response = api(bob).post("/api/v1/follows/", {"username": username}, format="json")
    assert response.status_code in (400, 404)
    assert "error" in response.json()
    assert not Follow.objects.exists()


def test_a_deactivated_member_is_nobody(api: Any, bob: User, rita: User) -> None:
    rita.is_active = False
    rita.save()
    assert api(bob).post("/api/v1/follows/", {"username": "rita"},
                         format="json").status_code == 404
    assert api(None).get("/api/v1/members/rita/").status_code == 404


def test_anonymous_cannot_follow(api: Any, rita: User) -> None:
    assert api(None).post("/api/v1/follows/", {"username": "rita"},
                          format="json").status_code == 401


def test_unfollowing_is_idempotent_and_only_ones_own(api: Any, bob: User, carol: User,
                                                     rita: User) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    Follow.objects.create(follower=carol, rights_holder=rita)
    assert api(carol).delete("/api/v1/follows/rita/").status_code == 204
    assert api(carol).delete("/api/v1/follows/rita/").status_code == 204
    assert api(carol).delete("/api/v1/follows/nobody/").status_code == 404
    assert list(Follow.objects.values_list("follower__username", flat=True)) == ["bob"]


@override_settings(COMMUNITY_FOLLOW_RATE="2/min")
def test_a_flood_of_follows_is_rate_limited(api: Any, bob: User, rita: User, rob: User,
                                            django_user_model: Any) -> None:
    from django.core.cache import cache

    cache.clear()
    others = [django_user_model.objects.create_user(username=f"seller{i}",
                                                    role="rights_holder") for i in range(2)]
    client = api(bob)
    assert client.post("/api/v1/follows/", {"username": "rita"}, format="json").status_code == 201
    assert client.post("/api/v1/follows/", {"username": "rob"}, format="json").status_code == 201
    limited = client.post("/api/v1/follows/", {"username": others[0].username}, format="json")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert Follow.objects.filter(follower=bob).count() == 2


# --- the feed and the announcement --------------------------------------------------


def test_a_new_work_reaches_followers_feed_and_notifications(
        api: Any, bob: User, carol: User, rita: User, rob: User, make_work: Any) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    Follow.objects.create(follower=carol, rights_holder=rob)
    older = make_work(rita, title="Harbour at dawn")
    newer = make_work(rita, title="Harbour at dusk")
    make_work(rob, title="Rob's river")
    make_work(rita, title="Still packing", ready=False)

    feed = api(bob).get("/api/v1/feed/").json()
    assert [w["title"] for w in feed["results"]] == ["Harbour at dusk", "Harbour at dawn"]
    notes = Notification.objects.filter(recipient=bob, kind="new_work").order_by("created_at")
    assert [n.title for n in notes] == ["New from rita: Harbour at dawn",
                                        "New from rita: Harbour at dusk"]
    assert [n.url for n in notes] == [f"/works/{older.pk}/", f"/works/{newer.pk}/"]
    # email is on by default for new works: one email per work, to Bob
    to_bob = [m for m in mail.outbox if m.to == ["bob@example.test"]]
    assert len(to_bob) == 2
    # Carol follows Rob only; nobody follows oneself into one's own notifications
    assert [n.title for n in Notification.objects.filter(recipient=carol)] == [
        "New from rob: Rob's river"]
    assert not Notification.objects.filter(recipient__in=[rita, rob]).exists()


def test_a_retried_announcement_notifies_nobody_twice(bob: User, rita: User,
                                                      make_work: Any) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    work = make_work(rita)  # announced once, on going on sale
    emails = len(mail.outbox)
    assert work_announce_task.apply(args=[str(work.pk)]).get() == {
        "followers": 0, "wishlist_matches": 0}
    work_announce(work_id=work.pk)
    assert Notification.objects.filter(recipient=bob).count() == 1
    assert len(mail.outbox) == emails


def test_a_work_not_on_sale_is_not_announced(bob: User, rita: User, make_work: Any) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    draft = make_work(rita, ready=False)
    assert work_announce(work_id=draft.pk).followers == 0
    Work.objects.filter(pk=draft.pk).update(status=WorkStatus.WITHDRAWN)
    assert work_announce(work_id=draft.pk).followers == 0
    assert not Notification.objects.exists()


def test_the_feed_is_ones_own_and_needs_a_login(api: Any, bob: User, carol: User,
                                                rita: User, make_work: Any) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    make_work(rita)
    assert api(carol).get("/api/v1/feed/").json()["count"] == 0
    assert api(None).get("/api/v1/feed/").status_code == 401


def test_withdrawn_works_leave_the_feed(api: Any, bob: User, rita: User,
                                        make_work: Any) -> None:
    Follow.objects.create(follower=bob, rights_holder=rita)
    work = make_work(rita)
    Work.objects.filter(pk=work.pk).update(status=WorkStatus.WITHDRAWN)
    assert api(bob).get("/api/v1/feed/").json()["count"] == 0


def test_storefront_shows_the_rights_holder(api: Any, bob: User, rita: User,
                                            make_work: Any) -> None:
    make_work(rita)
    make_work(rita, ready=False)
    Follow.objects.create(follower=bob, rights_holder=rita)
    body = api(bob).get("/api/v1/members/rita/").json()
    assert body == {"username": "rita", "display_name": "rita", "bio": "", "links": [],
                    "is_rights_holder": True, "follower_count": 1, "works_on_sale": 1,
                    "collection_public": False, "following": True}
    assert api(None).get("/api/v1/members/rita/").json()["following"] is None
