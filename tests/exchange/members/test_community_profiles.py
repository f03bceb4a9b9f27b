"""Public profiles and collections: what a member shows, checked; private stays private."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.accounts.models import User
from exchange.community.models import MemberProfile

pytestmark = pytest.mark.django_db


def _patch(client: Any, body: object) -> Any:
    return client.patch("/api/v1/me/profile/", body, format="json")


def test_a_member_writes_their_profile(api: Any, rita: User) -> None:
    client = api(rita)
    response = _patch(client, {"display_name": "Rita Kim", "bio": "Photographs <b>of</b> 부산.",
                               "links": ["https://rita.example/", "http://blog.example/x"]})
    assert response.status_code == 200
    assert response.json() == {"display_name": "Rita Kim", "bio": "Photographs <b>of</b> 부산.",
                               "links": ["https://rita.example/", "http://blog.example/x"],
                               "collection_public": False}
    public = api(None).get("/api/v1/members/rita/").json()
    assert (public["display_name"], public["links"]) == ("Rita Kim", response.json()["links"])


def test_the_bio_is_shown_as_text_never_as_html(client: Any, rita: User) -> None:
    MemberProfile.objects.create(user=rita, bio="<script>alert(1)</script>",
                                 display_name="<img src=x onerror=alert(1)>")
    page = client.get("/members/rita/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


@pytest.mark.parametrize("body", [
    {"links": ["javascript:alert(1)"]},
    {"links": ["data:text/html,<script>alert(1)</script>"]},
    {"links": ["ftp://files.example/"]},
    {"links": ["https://"]},
    {"links": ["https://user:pw@evil.example/"]},
    {"links": ["https://ok.example/ spaced"]},
    {"links": [f"https://ok{i}.example/" for i in range(6)]},
    {"links": "https://rita.example/"},
    {"links": [5]},
    {"bio": "x" * 1001},
    {"bio": "bell \u0007"},
    {"bio": 5},
    {"display_name": "x" * 81},
    {"display_name": "two\nlines"},
    {"collection_public": "yes"},
    {"username": "root"},
])
def test_a_bad_profile_is_refused_and_nothing_changes(api: Any, rita: User,
                                                      body: dict[str, Any]) -> None:
    MemberProfile.objects.create(user=rita, display_name="Rita", bio="before",
                                 links=["https://rita.example/"])
    response = _patch(api(rita), {"bio": "after", **body} if "bio" not in body else body)
    assert response.status_code == 400
    assert "error" in response.json()
    profile = MemberProfile.objects.get(user=rita)
    assert (profile.display_name, profile.bio, profile.links) == (
        "Rita", "before", ["https://rita.example/"])


def test_invalid_utf8_is_a_clear_400(api: Any, rita: User) -> None:
    response = api(rita).generic("PATCH", "/api/v1/me/profile/", b'{"bio": "\xff\xfe"}',
                                 content_type="application/json")
    assert response.status_code == 400
    assert not MemberProfile.objects.exists()


def test_a_huge_body_is_refused(api: Any, rita: User) -> None:
    response = _patch(api(rita), {"bio": "x" * 3_000_000})
    assert response.status_code in (400, 413)
    assert not MemberProfile.objects.exists()


def test_the_profile_is_ones_own(api: Any, bob: User, rita: User) -> None:
    assert api(None).patch("/api/v1/me/profile/", {"bio": "x"}, format="json").status_code == 401
    _patch(api(bob), {"bio": "Bob's"})
    assert not MemberProfile.objects.filter(user=rita).exists()
    assert api(rita).get("/api/v1/me/profile/").json()["bio"] == ""


# --- collections ----------------------------------------------------------------------


@pytest.fixture
def bobs_licence(bob: User, rita: User, make_work: Any, fund: Any, device_of: Any) -> Any:
    from exchange.purchases.services import purchase_create

    work = make_work(rita, title="Owned by Bob")
    make_work(rita, title="Not bought")
    fund(bob, 5000)
    _keys, device = device_of(bob)
    return purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)


def test_a_private_collection_is_a_404_like_nobody(api: Any, client: Any, bob: User,
                                                    carol: User, bobs_licence: Any) -> None:
    for viewer in (None, carol, bob):
        assert api(viewer).get("/api/v1/members/bob/collection/").status_code == 404
    assert api(None).get("/api/v1/members/nobody/collection/").json() == api(None).get(
        "/api/v1/members/bob/collection/").json()
    assert client.get("/members/bob/collection/").status_code == 404


def test_an_opted_in_collection_lists_the_works_held(api: Any, client: Any, bob: User,
                                                      bobs_licence: Any) -> None:
    assert _patch(api(bob), {"collection_public": True}).status_code == 200
    body = api(None).get("/api/v1/members/bob/collection/").json()
    assert [w["title"] for w in body["results"]] == ["Owned by Bob"]
    page = client.get("/members/bob/collection/")
    assert page.status_code == 200
    assert "Owned by Bob" in page.content.decode()
    assert "Not bought" not in page.content.decode()


def test_a_refunded_work_leaves_the_collection(api: Any, bob: User, bobs_licence: Any
                                              ) -> None:
    from exchange.purchases.services import purchase_refund

    assert _patch(api(bob), {"collection_public": True}).status_code == 200
    purchase_refund(purchase_id=bobs_licence.pk, reason="no receipt in time")
    assert api(None).get("/api/v1/members/bob/collection/").json()["results"] == []


def test_an_admin_clears_an_abusive_profile_and_it_is_audited(admin_user: User, rita: User,
                                                              bob: User) -> None:
    from django.test import Client

    from exchange.audit.models import AuditEvent
    from tests.conftest import PASSWORD

    abusive = MemberProfile.objects.create(user=rita, display_name="Spam", bio="Buy pills",
                                           links=["https://spam.example/"])
    MemberProfile.objects.create(user=bob, bio="Fine")
    client = Client()
    assert client.login(username="admin", password=PASSWORD)
    response = client.post("/admin/community/memberprofile/", {
        "action": "clear_public_text", "_selected_action": [rita.pk]})
    assert response.status_code == 302
    abusive.refresh_from_db()
    assert (abusive.display_name, abusive.bio, abusive.links) == ("", "", [])
    assert MemberProfile.objects.get(user=bob).bio == "Fine"
    event = AuditEvent.objects.get(action="profile.clear")
    assert (event.actor, event.data["before"]["bio"]) == (admin_user, "Buy pills")
    bobs = Client()
    assert bobs.login(username="bob", password=PASSWORD)
    assert bobs.post("/admin/community/memberprofile/", {
        "action": "clear_public_text", "_selected_action": [bob.pk]}).status_code == 302
    assert MemberProfile.objects.get(user=bob).bio == "Fine"
