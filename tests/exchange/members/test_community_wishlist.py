"""Wishlists: saved catalogue searches, and a notification when a new work matches."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from exchange.accounts.models import User
from exchange.community.models import Notification, SavedSearch
from exchange.community.services import work_announce

pytestmark = pytest.mark.django_db


def _save(client: Any, **body: Any) -> Any:
    return client.post("/api/v1/saved-searches/", body, format="json")


def test_a_saved_search_is_kept_once(api: Any, bob: User) -> None:
    client = api(bob)
    first = _save(client, query="  harbour   dawn ", media_type="image", currency="EUR",
                  max_price_minor=2000)
    again = _save(client, query="harbour dawn", media_type="image", currency="EUR",
                  max_price_minor=2000)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["query"] == "harbour dawn"
    assert first.json()["id"] == again.json()["id"]
    assert [s["query"] for s in client.get("/api/v1/saved-searches/").json()["results"]] == [
        "harbour dawn"]


@pytest.mark.parametrize("body", [
    {"query": ""},
    {"query": "   "},
    {"query": "x" * 201},
    {"query": 5},
    {"query": "a\u0000b"},
    {"query": "harbour", "media_type": "hologram"},
    {"query": "harbour", "currency": "XYZ"},
    {"query": "harbour", "max_price_minor": 100},  # a price without its currency
    {"query": "harbour", "currency": "EUR", "max_price_minor": 0},
    {"query": "harbour", "currency": "EUR", "max_price_minor": 1.5},
])
def test_a_bad_saved_search_is_refused_and_nothing_stored(api: Any, bob: User,
                                                          body: dict[str, Any]) -> None:
    response = _save(api(bob), **body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not SavedSearch.objects.exists()


@override_settings(COMMUNITY_MAX_SAVED_SEARCHES=2)
def test_at_most_n_saved_searches(api: Any, bob: User, carol: User) -> None:
    client = api(bob)
    assert _save(client, query="one").status_code == 201
    assert _save(client, query="two").status_code == 201
    third = _save(client, query="three")
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "too_many_saved_searches"
    assert _save(api(carol), query="three").status_code == 201  # Carol has her own budget


def test_a_saved_search_is_deleted_only_by_its_owner(api: Any, bob: User, carol: User) -> None:
    search = SavedSearch.objects.create(owner=bob, query="harbour")
    assert api(carol).delete(f"/api/v1/saved-searches/{search.pk}/").status_code == 404
    assert api(carol).get("/api/v1/saved-searches/").json()["count"] == 0
    assert SavedSearch.objects.filter(pk=search.pk).exists()
    assert api(bob).delete(f"/api/v1/saved-searches/{search.pk}/").status_code == 204
    assert api(bob).delete(f"/api/v1/saved-searches/{search.pk}/").status_code == 404
    assert not SavedSearch.objects.exists()


def test_a_matching_new_work_notifies_once_per_search(bob: User, carol: User, rita: User,
                                                      make_work: Any) -> None:
    hit = SavedSearch.objects.create(owner=bob, query="harbour DAWN")
    SavedSearch.objects.create(owner=bob, query="harbour", media_type="audio")  # wrong media
    SavedSearch.objects.create(owner=bob, query="harbour", currency="KRW")  # wrong currency
    SavedSearch.objects.create(owner=carol, query="harbour", currency="EUR",
                               max_price_minor=1000)  # too cheap a limit for 12.50 EUR
    cheap_enough = SavedSearch.objects.create(owner=carol, query="quiet", currency="EUR",
                                              max_price_minor=1250)
    SavedSearch.objects.create(owner=carol, query="harbour sunset")  # not every word
    SavedSearch.objects.create(owner=rita, query="harbour")  # her own work: no news

    work = make_work(rita, title="Harbour at dawn", description="A quiet harbour.",
                     price_minor=1250, currency="EUR")

    notes = Notification.objects.filter(kind="wishlist_match").order_by("recipient__username")
    assert [(n.recipient.username, n.subject) for n in notes] == [
        ("bob", f"search:{hit.pk}:work:{work.pk}"),
        ("carol", f"search:{cheap_enough.pk}:work:{work.pk}"),
    ]
    assert notes[0].title == "A new work matches your saved search “harbour DAWN”: Harbour at dawn"
    again = work_announce(work_id=work.pk)
    assert again.wishlist_matches == 0
    assert Notification.objects.filter(kind="wishlist_match").count() == 2


def test_a_follower_with_a_matching_search_hears_of_both(bob: User, rita: User,
                                                         make_work: Any) -> None:
    from exchange.community.models import Follow

    Follow.objects.create(follower=bob, rights_holder=rita)
    SavedSearch.objects.create(owner=bob, query="harbour")
    make_work(rita)
    assert sorted(Notification.objects.filter(recipient=bob).values_list("kind", flat=True)) == [
        "new_work", "wishlist_match"]


def test_saved_searches_are_ones_own(api: Any, bob: User, carol: User) -> None:
    SavedSearch.objects.create(owner=bob, query="harbour")
    assert api(carol).get("/api/v1/saved-searches/").json()["count"] == 0
    assert api(None).get("/api/v1/saved-searches/").status_code == 401


def test_a_replayed_delete_replays(api: Any, bob: User) -> None:
    search = SavedSearch.objects.create(owner=bob, query="harbour")
    client = api(bob)
    headers = {"Idempotency-Key": "delete-1"}
    first = client.delete(f"/api/v1/saved-searches/{search.pk}/", headers=headers)
    replay = client.delete(f"/api/v1/saved-searches/{search.pk}/", headers=headers)
    assert (first.status_code, replay.status_code) == (204, 204)
    assert replay["Idempotent-Replayed"] == "true"
