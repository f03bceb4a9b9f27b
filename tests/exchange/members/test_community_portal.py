"""The community's portal pages: in both languages, each member's own, forms that refuse
bad input without storing anything."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from exchange.accounts.models import User
from exchange.community.models import (
    Follow,
    MemberProfile,
    Notification,
    NotificationSwitch,
    SavedSearch,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(user: User) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.parametrize("path", ["/feed/", "/notifications/", "/notifications/settings/",
                                  "/wishlist/", "/profile/"])
def test_private_pages_send_visitors_to_log_in(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_follow_button_follows_and_unfollows(bob: User, rita: User,
                                                 make_work: Any) -> None:
    make_work(rita, title="Harbour at dawn")
    client = _login(bob)
    page = client.get("/members/rita/").content.decode()
    assert "Harbour at dawn" in page
    assert "0 followers" in page
    assert client.post("/members/rita/follow/", {"action": "follow"}).status_code == 302
    assert client.post("/members/rita/follow/", {"action": "follow"}).status_code == 302
    assert Follow.objects.filter(follower=bob).count() == 1
    assert "1 follower" in client.get("/members/rita/").content.decode()
    feed = client.get("/feed/").content.decode()
    assert "Harbour at dawn" in feed
    client.post("/members/rita/follow/", {"action": "unfollow"})
    assert not Follow.objects.exists()


def test_following_oneself_on_the_portal_is_a_message(rita: User) -> None:
    client = _login(rita)
    response = client.post("/members/rita/follow/", follow=True)
    assert "You cannot follow yourself." in response.content.decode()
    assert not Follow.objects.exists()
    assert client.post("/members/nobody/follow/").status_code == 404


def test_the_storefront_speaks_korean(client: Client, rita: User, make_work: Any) -> None:
    make_work(rita)
    client.cookies["django_language"] = "ko"
    page = client.get("/members/rita/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert 'lang="ko"' in page


def test_notifications_page_shows_only_ones_own(bob: User, carol: User) -> None:
    Notification.objects.create(recipient=bob, kind="message", title="For Bob")
    Notification.objects.create(recipient=carol, kind="message", title="For Carol")
    page = _login(carol).get("/notifications/").content.decode()
    assert "For Carol" in page
    assert "For Bob" not in page


def test_opening_a_notification_marks_it_read_and_stays_on_this_site(bob: User,
                                                                       carol: User) -> None:
    mine = Notification.objects.create(recipient=bob, kind="message", title="x",
                                       url="/works/1/")
    theirs = Notification.objects.create(recipient=carol, kind="message", title="y")
    client = _login(bob)
    opened = client.post("/notifications/read/", {"id": mine.pk, "next": "/works/1/"})
    assert opened["Location"] == "/works/1/"
    evil = client.post("/notifications/read/", {"id": mine.pk,
                                                "next": "https://evil.example/"})
    assert evil["Location"] == "/notifications/"
    client.post("/notifications/read/", {"id": theirs.pk})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read_at is not None
    assert theirs.read_at is None


def test_the_settings_form_saves_switches(bob: User) -> None:
    client = _login(bob)
    page = client.get("/notifications/settings/").content.decode()
    assert "New works from rights holders I follow" in page
    # every box unticked but the portal's for new works
    response = client.post("/notifications/settings/", {"new_work.portal": "on"})
    assert response.status_code == 302
    from exchange.community.notifications import switches_for

    table = switches_for(bob)
    assert table["new_work"] == {"portal": True, "email": False, "agent": False}
    assert table["message"] == {"portal": False, "email": False, "agent": False}
    assert NotificationSwitch.objects.filter(user=bob).count() == 21


def test_the_wishlist_form_saves_and_refuses(bob: User, carol: User) -> None:
    client = _login(bob)
    assert client.post("/wishlist/", {"query": "harbour", "currency": "EUR",
                                      "max_price_minor": "2000"}).status_code == 302
    bad = client.post("/wishlist/", {"query": "cheap", "max_price_minor": "100"})
    assert bad.status_code == 400
    assert "A highest price needs its currency." in bad.content.decode()
    assert list(SavedSearch.objects.values_list("query", flat=True)) == ["harbour"]
    search = SavedSearch.objects.get()
    assert _login(carol).post(f"/wishlist/{search.pk}/delete/").status_code == 404
    assert client.post(f"/wishlist/{search.pk}/delete/").status_code == 302
    assert not SavedSearch.objects.exists()


def test_the_profile_form_refuses_a_script_link(rita: User) -> None:
    client = _login(rita)
    response = client.post("/profile/", {"display_name": "Rita", "bio": "Hi",
                                         "links": "https://ok.example/\njavascript:alert(1)"})
    assert response.status_code == 400
    assert "http:// or https://" in response.content.decode()
    assert not MemberProfile.objects.exists()
    saved = client.post("/profile/", {"display_name": "Rita", "bio": "Hi",
                                      "links": "https://ok.example/", "collection_public": "on"})
    assert saved.status_code == 302
    profile = MemberProfile.objects.get(user=rita)
    assert (profile.links, profile.collection_public) == (["https://ok.example/"], True)


def test_a_members_page_for_nobody_is_a_404(client: Client, bob: User) -> None:
    assert client.get("/members/nobody/").status_code == 404
    # a buyer's page exists, without works or a follow button
    page = _login(bob).get("/members/bob/").content.decode()
    assert "Follow" not in page
