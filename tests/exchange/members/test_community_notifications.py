"""Notifications: stored per channel switch, emailed once on commit, and each member's own."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import transaction

from exchange.accounts.models import User
from exchange.community import notifications
from exchange.community.models import Notification, NotificationSwitch
from exchange.community.notifications import (
    KIND_MESSAGE,
    KIND_NEW_WORK,
    KIND_REVIEW,
    notify,
    notify_once,
)

pytestmark = pytest.mark.django_db


def test_notify_stores_it_and_emails_once_the_write_commits(
        bob: User, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(recipient=bob, kind=KIND_MESSAGE, title="Carol wrote to you",
                      body="Hello", url="/messages/1/")
        assert mail.outbox == []  # not before the commit
    assert note is not None
    assert (note.in_portal, note.in_agent, note.emailed) == (True, True, True)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["bob@example.test"]
    assert email.subject == "[Peermark] Carol wrote to you"
    assert "Hello" in email.body
    assert "http://127.0.0.1:8000/messages/1/" in email.body


def test_a_rolled_back_write_sends_no_email(bob: User,
                                            django_capture_on_commit_callbacks: Any) -> None:
    def failing_write() -> None:
        with transaction.atomic():
            notify(recipient=bob, kind=KIND_MESSAGE, title="x")
            raise RuntimeError("the caller's write failed")

    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError)):
        failing_write()
    assert callbacks == []
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_review_is_not_emailed_by_default_but_shown(
        rita: User, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(recipient=rita, kind=KIND_REVIEW, title="A new review")
    assert note is not None
    assert note.in_portal
    assert note.in_agent
    assert not note.emailed
    assert mail.outbox == []


def test_switches_are_honoured_per_channel(bob: User,
                                           django_capture_on_commit_callbacks: Any) -> None:
    NotificationSwitch.objects.create(user=bob, kind=KIND_MESSAGE, channel="email", enabled=False)
    NotificationSwitch.objects.create(user=bob, kind=KIND_MESSAGE, channel="agent", enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(recipient=bob, kind=KIND_MESSAGE, title="x")
    assert note is not None
    assert (note.in_portal, note.in_agent, note.emailed) == (True, False, False)
    assert mail.outbox == []
    NotificationSwitch.objects.create(user=bob, kind=KIND_MESSAGE, channel="portal",
                                      enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(recipient=bob, kind=KIND_MESSAGE, title="y") is None
    assert Notification.objects.count() == 1


def test_one_members_switches_do_not_touch_anothers(bob: User, carol: User) -> None:
    NotificationSwitch.objects.create(user=bob, kind=KIND_MESSAGE, channel="portal",
                                      enabled=False)
    assert notifications.switches_for(carol)[KIND_MESSAGE]["portal"] is True


def test_an_email_that_fails_is_logged_never_raised(
        bob: User, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def refuse(**_kwargs: Any) -> int:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(notifications, "send_mail", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(recipient=bob, kind=KIND_NEW_WORK, title="x")
    assert note is not None
    note.refresh_from_db()
    assert note.emailed is False  # the record says the email did not go out
    assert "email to user" in caplog.text


def test_notify_once_tells_a_subject_once(bob: User,
                                          django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = notify_once(recipient=bob, kind=KIND_NEW_WORK, subject="work:1", title="x")
        again = notify_once(recipient=bob, kind=KIND_NEW_WORK, subject="work:1", title="x")
    assert first is not None
    assert again is None
    assert Notification.objects.filter(recipient=bob).count() == 1
    assert len(mail.outbox) == 1


def test_an_unknown_kind_is_a_programming_error(bob: User) -> None:
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(recipient=bob, kind="spam", title="x")


def test_no_email_without_an_address(bob: User,
                                     django_capture_on_commit_callbacks: Any) -> None:
    bob.email = ""
    bob.save()
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(recipient=bob, kind=KIND_MESSAGE, title="x")
    assert note is not None
    assert not note.emailed
    assert mail.outbox == []


# --- the API: one's own notifications only -----------------------------------------


def _notes(bob: User, carol: User) -> tuple[Notification, Notification, Notification]:
    a = Notification.objects.create(recipient=bob, kind=KIND_MESSAGE, title="bob 1")
    b = Notification.objects.create(recipient=bob, kind=KIND_MESSAGE, title="bob 2")
    c = Notification.objects.create(recipient=carol, kind=KIND_MESSAGE, title="carol 1")
    return a, b, c


def test_a_member_lists_only_their_own(api: Any, bob: User, carol: User) -> None:
    _notes(bob, carol)
    body = api(carol).get("/api/v1/notifications/").json()
    assert [n["title"] for n in body["results"]] == ["carol 1"]
    assert api(None).get("/api/v1/notifications/").status_code == 401


def test_unread_come_first_then_newest(api: Any, bob: User, carol: User) -> None:
    a, b, _c = _notes(bob, carol)
    client = api(bob)
    assert client.post("/api/v1/notifications/read/", {"ids": [b.pk]},
                       format="json").json() == {"marked": 1, "unread": 1}
    titles = [n["title"] for n in client.get("/api/v1/notifications/").json()["results"]]
    assert titles == ["bob 1", "bob 2"]
    unread = client.get("/api/v1/notifications/?unread=true").json()["results"]
    assert [n["id"] for n in unread] == [a.pk]


def test_nobody_marks_anothers_notifications_read(api: Any, bob: User, carol: User) -> None:
    a, b, _c = _notes(bob, carol)
    client = api(carol)
    assert client.post("/api/v1/notifications/read/", {"ids": [a.pk, b.pk]},
                       format="json").json() == {"marked": 0, "unread": 1}
    assert client.post("/api/v1/notifications/read/", {"all": True},
                       format="json").json() == {"marked": 1, "unread": 0}
    assert Notification.objects.filter(recipient=bob, read_at__isnull=True).count() == 2
    assert api(bob).get("/api/v1/notifications/unread-count/").json() == {"unread": 2}


def test_marking_read_is_idempotent(api: Any, bob: User, carol: User) -> None:
    _notes(bob, carol)
    client = api(bob)
    headers = {"Idempotency-Key": "mark-1"}
    first = client.post("/api/v1/notifications/read/", {"all": True}, format="json",
                        headers=headers)
    replay = client.post("/api/v1/notifications/read/", {"all": True}, format="json",
                         headers=headers)
    assert first.json() == replay.json() == {"marked": 2, "unread": 0}
    assert replay["Idempotent-Replayed"] == "true"
    # without a key, marking again marks nothing more
    assert client.post("/api/v1/notifications/read/", {"all": True},
                       format="json").json() == {"marked": 0, "unread": 0}


@pytest.mark.parametrize("body", [{}, {"ids": [1], "all": True}, {"ids": "1"},
                                  {"ids": [1.5]}, {"all": "yes"}, {"ids": [-1]}])
def test_a_malformed_mark_request_is_a_400(api: Any, bob: User, body: dict[str, Any]) -> None:
    response = api(bob).post("/api/v1/notifications/read/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_the_agent_channel_lists_what_was_sent_to_the_agent(api: Any, bob: User) -> None:
    Notification.objects.create(recipient=bob, kind=KIND_MESSAGE, title="both")
    Notification.objects.create(recipient=bob, kind=KIND_MESSAGE, title="portal only",
                                in_agent=False)
    Notification.objects.create(recipient=bob, kind=KIND_MESSAGE, title="email only",
                                in_agent=False, in_portal=False)
    client = api(bob)
    agent = client.get("/api/v1/notifications/?channel=agent").json()["results"]
    assert [n["title"] for n in agent] == ["both"]
    assert client.get("/api/v1/notifications/unread-count/?channel=agent").json() == {
        "unread": 1}
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 2}
    assert client.get("/api/v1/notifications/?channel=email").status_code == 400


def test_switches_read_and_change(api: Any, bob: User) -> None:
    client = api(bob)
    switches = client.get("/api/v1/notifications/switches/").json()["switches"]
    assert switches[KIND_NEW_WORK] == {"portal": True, "email": True, "agent": True}
    assert switches[KIND_REVIEW] == {"portal": True, "email": False, "agent": True}
    changed = client.patch("/api/v1/notifications/switches/",
                           {"switches": {KIND_NEW_WORK: {"email": False}}}, format="json")
    assert changed.status_code == 200
    assert changed.json()["switches"][KIND_NEW_WORK] == {"portal": True, "email": False,
                                                         "agent": True}
    assert NotificationSwitch.objects.filter(user=bob).count() == 1


@pytest.mark.parametrize("switches", [
    {"spam": {"email": False}},
    {KIND_NEW_WORK: {"sms": True}},
    {KIND_NEW_WORK: {"email": "no"}},
    {KIND_NEW_WORK: True},
    ["new_work"],
])
def test_bad_switches_are_refused_and_change_nothing(api: Any, bob: User,
                                                     switches: object) -> None:
    response = api(bob).patch("/api/v1/notifications/switches/", {"switches": switches},
                              format="json")
    assert response.status_code == 400
    assert not NotificationSwitch.objects.exists()


def test_an_announcement_title_is_written_in_the_readers_language(
        api: Any, bob: User, monkeypatch: pytest.MonkeyPatch) -> None:
    note = Notification.objects.create(
        recipient=bob, kind=KIND_NEW_WORK, title="New from rita: Dawn (as stored)",
        params={"name": "rita", "title": "Dawn"})
    client = api(bob)
    assert client.get("/api/v1/notifications/").json()["results"][0]["title"] == (
        "New from rita: Dawn")
    korean = {notifications.TITLES[KIND_NEW_WORK]: "%(name)s 님의 새 작품: %(title)s"}
    monkeypatch.setattr(notifications, "_", lambda text: korean.get(text, text))
    assert notifications.title_of(note) == "rita 님의 새 작품: Dawn"
    # a title from a sentence whose values no longer fit falls back to what was stored
    note.params = {"unexpected": "x"}
    assert notifications.title_of(note) == "New from rita: Dawn (as stored)"
    # other kinds are shown as their sender wrote them
    other = Notification(recipient=bob, kind=KIND_MESSAGE, title="Carol wrote",
                         params={"name": "x"})
    assert notifications.title_of(other) == "Carol wrote"


def test_the_email_is_in_the_language_the_member_logged_in_with(
        bob: User, rita: User, django_capture_on_commit_callbacks: Any) -> None:
    """Bob logs in to the portal in Korean; a new work's email reaches him in Korean,
    although the task that sends it runs with no request (and so in the default)."""
    from django.test import Client

    from tests.conftest import PASSWORD

    browser = Client(HTTP_ACCEPT_LANGUAGE="ko")
    assert browser.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        notify_once(recipient=bob, kind=KIND_NEW_WORK, subject="work:1", title="fallback",
                    url="/works/1/", params={"name": "rita", "title": "서울의 밤"})
    (email,) = mail.outbox
    # "New from %(name)s: %(title)s" in locale/ko, and the closing line
    assert email.subject == "[Peermark] rita 님의 새 작품: 서울의 밤"
    assert "알림 설정" in email.body
