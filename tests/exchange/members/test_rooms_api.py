"""The rooms' REST API and portal pages: a room's rules, its history, moderation, each
from the side of those who should not get through. Expected values are written by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from exchange.accounts.models import User
from exchange.audit.models import AuditEvent
from exchange.rooms.models import Room, RoomMessage, RoomSanction

pytestmark = pytest.mark.django_db


def room_of(work: Any, **rules: Any) -> Room:
    return Room.objects.create(kind="work", work=work, owner=work.owner, **rules)


def url(work: Any, tail: str = "") -> str:
    return f"/api/v1/rooms/work/{work.pk}/{tail}"


def test_anyone_reads_a_public_rooms_rules_and_the_room_is_made_on_first_sight(
        work: Any, api: Callable[..., Any]) -> None:
    response = api(None).get(url(work))
    assert response.status_code == 200
    assert response.json() == {
        "kind": "work", "target": str(work.pk), "title": "Harbour at dawn", "owner": "rita",
        "rules": {"restricted": False, "slow_mode_seconds": 0},
        "you": {"may_read": True, "may_join": False, "moderator": False, "muted_until": None,
                "kicked_until": None, "refusal": "not_authenticated"},
        "websocket": f"/ws/rooms/work/{work.pk}/",
    }
    assert Room.objects.filter(work=work).count() == 1
    api(None).get(url(work))
    assert Room.objects.filter(work=work).count() == 1


def test_rooms_of_what_is_not_public_do_not_exist(rita: User, bob: User, work: Any,
                                                 api: Callable[..., Any]) -> None:
    from exchange.catalogue.models import Work, WorkStatus

    Work.objects.filter(pk=work.pk).update(status=WorkStatus.PROCESSING)
    for path in (url(work), url(work, "messages/"), "/api/v1/rooms/member/bob/",
                 "/api/v1/rooms/member/nobody/", "/api/v1/rooms/shop/rita/",
                 "/api/v1/rooms/work/not-a-uuid/"):
        response = api(bob).get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert api(rita).get(url(work)).status_code == 200  # the owner sees their draft's room
    assert api(bob).get("/api/v1/rooms/member/rita/").status_code == 200


def test_history_is_newest_first_and_paginated(work: Any, bob: User, carol: User,
                                               api: Callable[..., Any]) -> None:
    room = room_of(work)
    for number in range(5):
        RoomMessage.objects.create(room=room, author=bob if number % 2 else carol,
                                   text=f"line {number}")
    body = api(None).get(url(work, "messages/?page_size=2")).json()
    assert body["count"] == 5
    assert [(m["author"], m["text"]) for m in body["results"]] == [
        ("carol", "line 4"), ("bob", "line 3")]
    second = api(None).get(url(work, "messages/?page_size=2&page=3")).json()
    assert [m["text"] for m in second["results"]] == ["line 0"]
    assert api(None).get(url(work, "messages/?page_size=0")).status_code == 400


def test_another_rooms_history_stays_there(work: Any, rita: User, bob: User,
                                           api: Callable[..., Any]) -> None:
    RoomMessage.objects.create(room=room_of(work), author=bob, text="about the work")
    body = api(bob).get("/api/v1/rooms/member/rita/messages/").json()
    assert body["count"] == 0


def test_a_restricted_rooms_history_is_for_licence_holders_and_moderators(
        licensed: Any, bob: User, carol: User, rita: User, rob: User, admin_user: User,
        api: Callable[..., Any]) -> None:
    RoomMessage.objects.create(room=room_of(licensed, restricted=True), author=bob,
                               text="for holders")
    path = url(licensed, "messages/")
    assert api(None).get(path).status_code == 401
    assert api(carol).get(path).status_code == 403
    assert api(rob).get(path).status_code == 403
    for who in (bob, rita, admin_user):
        assert api(who).get(path).json()["results"][0]["text"] == "for holders"
    info = api(carol).get(url(licensed)).json()
    assert info["you"]["refusal"] == "licence_required"


def test_only_the_owner_and_staff_change_the_rules(work: Any, bob: User, rob: User, rita: User,
                                                   admin_user: User,
                                                   api: Callable[..., Any]) -> None:
    body = {"slow_mode_seconds": 30, "restricted": True}
    assert api(None).patch(url(work), body, format="json").status_code == 401
    assert api(bob).patch(url(work), body, format="json").status_code == 403
    assert api(rob).patch(url(work), body, format="json").status_code == 403
    assert Room.objects.get(work=work).slow_mode_seconds == 0
    response = api(rita).patch(url(work), body, format="json")
    assert response.status_code == 200
    assert response.json()["rules"] == {"restricted": True, "slow_mode_seconds": 30}
    staff = api(admin_user).patch(url(work), {"restricted": False}, format="json")
    assert staff.json()["rules"] == {"restricted": False, "slow_mode_seconds": 30}
    actions = list(AuditEvent.objects.filter(action="room_rules")
                   .order_by("id").values_list("actor__username", "data"))
    assert actions == [
        ("rita", {"before": {"restricted": False, "slow_mode_seconds": 0},
                  "after": {"restricted": True, "slow_mode_seconds": 30}}),
        ("admin", {"before": {"restricted": True, "slow_mode_seconds": 30},
                   "after": {"restricted": False, "slow_mode_seconds": 30}}),
    ]


@pytest.mark.parametrize("body", [
    {"slow_mode_seconds": -1}, {"slow_mode_seconds": 3601}, {"slow_mode_seconds": 1.5},
    {"slow_mode_seconds": "ten"}, {"restricted": "yes"}, {"restricted": 1},
])
def test_bad_rules_are_refused_and_nothing_changes(work: Any, rita: User, body: dict[str, Any],
                                                   api: Callable[..., Any]) -> None:
    response = api(rita).patch(url(work), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    room = Room.objects.get(work=work)
    assert (room.restricted, room.slow_mode_seconds) == (False, 0)


def test_a_rights_holders_room_cannot_be_restricted(rita: User,
                                                    api: Callable[..., Any]) -> None:
    response = api(rita).patch("/api/v1/rooms/member/rita/", {"restricted": True},
                               format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "restricted": ["Only a work's room can be kept for its licence holders."]}


def test_a_mute_needs_an_idempotency_key_and_happens_once_per_key(
        work: Any, rita: User, bob: User, api: Callable[..., Any]) -> None:
    client = api(rita)
    body = {"member": "bob", "minutes": 15, "reason": "shouting"}
    missing = client.post(url(work, "mutes/"), body, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_required"
    first = client.post(url(work, "mutes/"), body, format="json", HTTP_IDEMPOTENCY_KEY="m-1")
    again = client.post(url(work, "mutes/"), body, format="json", HTTP_IDEMPOTENCY_KEY="m-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (first.json()["kind"], first.json()["member"], first.json()["by"],
            first.json()["reason"]) == ("mute", "bob", "rita", "shouting")
    other = client.post(url(work, "mutes/"), {**body, "minutes": 16}, format="json",
                        HTTP_IDEMPOTENCY_KEY="m-1")
    assert other.status_code == 422
    assert RoomSanction.objects.count() == 1
    assert AuditEvent.objects.filter(action="room_mute").count() == 1


def test_members_cannot_mute_or_kick(work: Any, bob: User, carol: User, rob: User,
                                     api: Callable[..., Any]) -> None:
    body = {"member": "carol", "minutes": 15}
    for who, status in ((None, 401), (bob, 403), (rob, 403)):
        for tail in ("mutes/", "kicks/"):
            response = api(who).post(url(work, tail), body, format="json",
                                     HTTP_IDEMPOTENCY_KEY=f"k-{tail}-{status}")
            assert response.status_code == status, (who, tail)
    assert RoomSanction.objects.count() == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"member": "nobody", "minutes": 5}, "member"),
    ({"member": "bob", "minutes": 0}, "minutes"),
    ({"member": "bob", "minutes": 60 * 24 * 30 + 1}, "minutes"),
    ({"member": "bob", "minutes": 5.0}, "minutes"),
    ({"member": "bob", "minutes": 5, "reason": "x" * 501}, "reason"),
    ({"member": "bob", "minutes": 5, "reason": "<script>\x00</script>"}, "reason"),
    ({"minutes": 5}, "member"),
])
def test_a_bad_kick_is_refused_and_nothing_is_stored(work: Any, rita: User, bob: User,
                                                     body: dict[str, Any], field: str,
                                                     api: Callable[..., Any]) -> None:
    response = api(rita).post(url(work, "kicks/"), body, format="json",
                              HTTP_IDEMPOTENCY_KEY="bad-kick")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert RoomSanction.objects.count() == 0
    assert AuditEvent.objects.filter(action="room_kick").count() == 0


def test_the_owner_cannot_be_kicked_from_their_own_room(work: Any, rita: User,
                                                        admin_user: User,
                                                        api: Callable[..., Any]) -> None:
    response = api(admin_user).post(url(work, "kicks/"), {"member": "rita", "minutes": 5},
                                    format="json", HTTP_IDEMPOTENCY_KEY="k-owner")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "moderator"


def test_a_kicked_member_reads_but_may_not_join(work: Any, rita: User, bob: User,
                                                api: Callable[..., Any]) -> None:
    api(rita).post(url(work, "kicks/"), {"member": "bob", "minutes": 30}, format="json",
                   HTTP_IDEMPOTENCY_KEY="k-bob")
    you = api(bob).get(url(work)).json()["you"]
    assert (you["may_read"], you["may_join"], you["refusal"]) == (True, False, "kicked")
    assert you["kicked_until"] is not None


# --- portal --------------------------------------------------------------------------


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_shows_the_history_escaped_for_readers_without_javascript(
        work: Any, bob: User) -> None:
    RoomMessage.objects.create(room=room_of(work), author=bob,
                               text='<script>alert("x")</script> 안녕')
    page = Client().get(f"/rooms/work/{work.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 안녕" in html
    assert '<script>alert("x")' not in html
    assert "Room: Harbour at dawn" in html
    assert 'id="room-say"' not in html  # a visitor reads, and is asked to log in


def test_the_page_speaks_korean(work: Any, bob: User) -> None:
    client = signed_in(bob)
    client.post("/i18n/setlang/", {"language": "ko", "next": "/"})
    html = client.get("/rooms/member/rita/").content.decode()
    assert 'lang="ko"' in html
    assert 'id="room-say"' in html


def test_a_restricted_rooms_page_is_for_licence_holders(licensed: Any, bob: User,
                                                        carol: User) -> None:
    room_of(licensed, restricted=True)
    path = f"/rooms/work/{licensed.pk}/"
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert signed_in(carol).get(path).status_code == 403
    assert signed_in(bob).get(path).status_code == 200


def test_only_moderators_save_the_rules_form(work: Any, rita: User, bob: User) -> None:
    path = f"/rooms/work/{work.pk}/"
    assert signed_in(bob).post(path, {"slow_mode_seconds": "5"}).status_code == 403
    assert Client().post(path, {"slow_mode_seconds": "5"}).status_code == 302
    assert Room.objects.get(work=work).slow_mode_seconds == 0
    owner = signed_in(rita)
    assert "Moderation" in owner.get(path).content.decode()
    response = owner.post(path, {"slow_mode_seconds": "5", "restricted": "on"})
    assert response.status_code == 302
    room = Room.objects.get(work=work)
    assert (room.restricted, room.slow_mode_seconds) == (True, 5)
    owner.post(path, {"slow_mode_seconds": "99999999"})
    room.refresh_from_db()
    assert (room.restricted, room.slow_mode_seconds) == (True, 5)  # refused as a whole


# --- mentions ------------------------------------------------------------------------


def _say(room: Room, author: User, text: str, capture: Callable[..., Any]) -> None:
    from exchange.rooms.services import room_message_say

    with capture(execute=True):
        room_message_say(room=room, author=author, text=text)


def test_a_mention_notifies_the_member_once(work: Any, bob: User, carol: User,
                                            django_capture_on_commit_callbacks: Any) -> None:
    from exchange.community.models import Notification

    _say(room_of(work), bob, "@carol, @carol: have you seen it? mail me at x@carol.example",
         django_capture_on_commit_callbacks)
    notes = list(Notification.objects.filter(kind="room_mention")
                 .values_list("recipient__username", "title", "url"))
    assert notes == [("carol", "bob mentioned you in the room “Harbour at dawn”",
                      f"/rooms/work/{work.pk}/")]


def test_no_one_is_notified_for_themselves_a_stranger_or_a_room_they_cannot_read(
        licensed: Any, bob: User, carol: User, django_capture_on_commit_callbacks: Any) -> None:
    from exchange.community.models import Notification

    room = room_of(licensed, restricted=True)
    _say(room, bob, "@bob @nobody @carol", django_capture_on_commit_callbacks)
    assert not Notification.objects.filter(kind="room_mention").exists()


def test_one_line_notifies_at_most_five_members(work: Any, bob: User,
                                                django_capture_on_commit_callbacks: Any) -> None:
    from exchange.accounts.models import Role
    from exchange.community.models import Notification

    names = [f"reader{number}" for number in range(8)]
    for name in names:
        User.objects.create_user(username=name, password=None, role=Role.BUYER)
    _say(room_of(work), bob, " ".join(f"@{name}" for name in names),
         django_capture_on_commit_callbacks)
    assert Notification.objects.filter(kind="room_mention").count() == 5
