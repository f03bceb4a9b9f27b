"""Private messages over the API, from the sender's, the recipient's and an outsider's
side: sanitising, sizes, blocks, rate limits, the daily cap of new conversations,
idempotency, and nobody reading another member's messages. Expected values are written
out by hand."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import cache

from exchange.audit.models import AuditEvent
from exchange.community.models import Notification
from exchange.messaging.models import Block, Conversation, Message, MessageReport


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"
    settings.MESSAGING_NEW_CONVERSATIONS_PER_DAY = 30
    settings.MESSAGING_MAX_BODY_CHARS = 5000


def _send(client: Any, to: str, body: Any, *, key: str | None = None, **extra: Any) -> Any:
    return client.post("/api/v1/messages/", {"to": to, "body": body, **extra}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


@pytest.fixture
def bob_api(api, bob):
    return api(bob)


@pytest.fixture
def rita_api(api, rita):
    return api(rita)


@pytest.fixture
def carol_api(api, carol):
    return api(carol)


def test_a_buyer_writes_to_a_rights_holder_who_is_notified(
        bob_api, rita, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(bob_api, "rita", "Is the <b>harbour</b> print also in A3?",
                         subject="A3 print?")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["sender"], body["recipient"], body["mode"], body["subject"], body["body"],
            body["read_at"]) == ("bob", "rita", "platform", "A3 print?",
                                 "Is the <b>harbour</b> print also in A3?", None)
    conversation = Conversation.objects.get()
    assert body["conversation"] == str(conversation.pk)
    notification = Notification.objects.get(recipient=rita)
    assert (notification.kind, notification.title, notification.url) == (
        "message", "New message from bob", f"/messages/{conversation.pk}/")


def test_both_directions_share_one_conversation(bob_api, rita_api) -> None:
    assert _send(bob_api, "rita", "hello").status_code == 201
    assert _send(rita_api, "bob", "hello back").status_code == 201
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2


@pytest.mark.parametrize(("body", "stored"), [
    ("<script>alert(1)</script>hi", "hi"),
    ('<img src=x onerror="alert(1)">look', "look"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<p onclick="x()" style="color:red">안녕하세요</p>', "<p>안녕하세요</p>"),
])
def test_scripts_and_handlers_are_removed_before_storing(bob_api, rita, body, stored) -> None:
    response = _send(bob_api, "rita", body)
    assert response.status_code == 201
    assert response.json()["body"] == stored
    assert Message.objects.get().body == stored


@pytest.mark.parametrize(("body", "field", "code"), [
    ("a" * 5001, "body", "too_long"),
    ("", "body", "empty"),
    ("   \n ", "body", "empty"),
    ("bell\x07", "body", "invalid_characters"),
    (5, "body", "invalid"),
    (None, "body", "invalid"),
])
def test_bad_bodies_are_refused_and_nothing_is_stored(bob_api, rita, body, field,
                                                      code) -> None:
    response = _send(bob_api, "rita", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    if code != "invalid":
        assert error["code"] == code
    assert (Message.objects.count(), Conversation.objects.count()) == (0, 0)


def test_a_body_at_the_limit_is_taken(bob_api, rita) -> None:
    assert _send(bob_api, "rita", "가" * 5000).status_code == 201


def test_a_long_subject_is_refused(bob_api, rita) -> None:
    response = _send(bob_api, "rita", "hi", subject="s" * 201)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"subject": ["At most 200 characters "
                                                              "(this has 201)."]}


def test_invalid_utf8_and_non_json_bodies_are_refused(bob_api, rita) -> None:
    raw = b'{"to": "rita", "body": "\xff\xfe broken"}'
    response = bob_api.post("/api/v1/messages/", raw, content_type="application/json",
                            HTTP_IDEMPOTENCY_KEY="k-utf8")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    response = bob_api.post("/api/v1/messages/", "to=rita&body=x",
                            content_type="application/x-www-form-urlencoded",
                            HTTP_IDEMPOTENCY_KEY="k-form")
    assert response.status_code == 415
    assert Message.objects.count() == 0


def test_a_body_past_the_request_size_limit_is_refused(bob_api, rita) -> None:
    response = _send(bob_api, "rita", "x" * (3 * 1024 * 1024))
    assert response.status_code in (400, 413)
    assert Message.objects.count() == 0


def test_writing_to_oneself_is_refused(bob_api, bob) -> None:
    response = _send(bob_api, "bob", "note to self")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "self_message"
    assert Conversation.objects.count() == 0


def test_an_unknown_and_a_deactivated_member_answer_alike(bob_api, carol) -> None:
    carol.is_active = False
    carol.save()
    unknown = _send(bob_api, "nobody-here", "hi")
    inactive = _send(bob_api, "carol", "hi")
    assert unknown.status_code == inactive.status_code == 404
    assert unknown.json() == inactive.json()
    assert Message.objects.count() == 0


def test_a_blocked_sender_is_refused_told_no_more_and_nothing_is_stored(
        bob_api, rita_api, rita, django_capture_on_commit_callbacks) -> None:
    assert rita_api.post("/api/v1/blocks/", {"username": "bob"}, format="json").status_code \
        == 201
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(bob_api, "rita", "please answer")
    assert response.status_code == 403
    assert response.json() == {"error": {
        "code": "blocked", "message": "This member does not accept messages from you.",
        "fields": {}}}
    assert (Message.objects.count(), Conversation.objects.count()) == (0, 0)
    assert not Notification.objects.filter(recipient=rita).exists()


def test_a_block_stops_an_existing_conversation_too(bob_api, rita_api) -> None:
    assert _send(bob_api, "rita", "first").status_code == 201
    rita_api.post("/api/v1/blocks/", {"username": "bob"}, format="json")
    assert _send(bob_api, "rita", "second").status_code == 403
    assert Message.objects.count() == 1
    # the blocker cannot write either until she unblocks
    refused = _send(rita_api, "bob", "a last word")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "you_blocked"
    assert rita_api.delete("/api/v1/blocks/bob/").status_code == 204
    assert _send(bob_api, "rita", "third").status_code == 201


def test_the_send_rate_limit_says_when_to_retry_and_stores_nothing(
        bob_api, rita, settings) -> None:
    settings.MESSAGING_SEND_RATE = "3/min"
    for _attempt in range(3):
        assert _send(bob_api, "rita", "spam?").status_code == 201
    flooded = _send(bob_api, "rita", "spam!")
    assert flooded.status_code == 429
    assert flooded.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(flooded["Retry-After"]) <= 60
    assert Message.objects.count() == 3


def test_the_rate_limit_is_per_member(bob_api, carol_api, rita, settings) -> None:
    settings.MESSAGING_SEND_RATE = "1/min"
    assert _send(bob_api, "rita", "one").status_code == 201
    assert _send(bob_api, "rita", "two").status_code == 429
    assert _send(carol_api, "rita", "mine").status_code == 201


def test_the_daily_cap_of_new_conversations(api, bob_api, rita, rob, carol,
                                            settings) -> None:
    settings.MESSAGING_NEW_CONVERSATIONS_PER_DAY = 2
    assert _send(bob_api, "rita", "hello").status_code == 201
    assert _send(bob_api, "rob", "hello").status_code == 201
    capped = _send(bob_api, "carol", "hello")
    assert capped.status_code == 429
    assert capped.json()["error"]["code"] == "rate_limited"
    assert 86_000 <= int(capped["Retry-After"]) <= 86_400
    assert not Conversation.objects.filter(first=carol).exists()
    assert not Conversation.objects.filter(second=carol).exists()
    # conversations already started go on; and Carol may still write to Bob
    assert _send(bob_api, "rita", "again").status_code == 201
    assert _send(api(carol), "bob", "hi bob").status_code == 201


def test_sending_needs_an_idempotency_key_and_a_retry_sends_once(bob_api, rita) -> None:
    missing = bob_api.post("/api/v1/messages/", {"to": "rita", "body": "x"}, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_required"
    first = _send(bob_api, "rita", "only once", key="send-1")
    again = _send(bob_api, "rita", "only once", key="send-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Message.objects.count() == 1
    other = _send(bob_api, "rita", "something else", key="send-1")
    assert other.status_code == 422


def test_anonymous_callers_are_refused(api, rita) -> None:
    anonymous = api(None)
    assert _send(anonymous, "rita", "hi").status_code == 401
    assert anonymous.get("/api/v1/messages/conversations/").status_code == 401


def _conversation_with_a_message(bob_api: Any) -> tuple[str, str]:
    body = _send(bob_api, "rita", "private words").json()
    return body["conversation"], body["id"]


def test_nobody_else_reads_a_conversation_or_its_messages(bob_api, rita, carol_api) -> None:
    conversation, message = _conversation_with_a_message(bob_api)
    missing_conversation, missing_message = str(uuid.UUID(int=9)), str(uuid.UUID(int=10))
    for theirs, missing in [
        (f"/api/v1/messages/conversations/{conversation}/",
         f"/api/v1/messages/conversations/{missing_conversation}/"),
    ]:
        a, b = carol_api.get(theirs), carol_api.get(missing)
        assert (a.status_code, a.json()) == (b.status_code, b.json())
        assert a.status_code == 404
    for action in ("read", "reports"):
        a = carol_api.post(f"/api/v1/messages/{message}/{action}/", {}, format="json")
        b = carol_api.post(f"/api/v1/messages/{missing_message}/{action}/", {}, format="json")
        assert (a.status_code, a.json()) == (b.status_code, b.json())
        assert a.status_code == 404
    assert carol_api.get("/api/v1/messages/").json()["count"] == 0
    assert carol_api.get("/api/v1/messages/conversations/").json()["count"] == 0
    assert carol_api.get("/api/v1/messages/unread/").json() == {"unread": 0}
    assert Message.objects.get().read_at is None
    assert MessageReport.objects.count() == 0


def test_not_a_uuid_is_a_plain_404(carol_api) -> None:
    assert carol_api.get("/api/v1/messages/conversations/not-a-uuid/").status_code == 404
    assert carol_api.post("/api/v1/messages/not-a-uuid/read/").status_code == 404


def test_unread_counts_and_reading_a_thread_marks_it_read(bob_api, rita_api) -> None:
    conversation, _message = _conversation_with_a_message(bob_api)
    _send(bob_api, "rita", "and another")
    assert rita_api.get("/api/v1/messages/unread/").json() == {"unread": 2}
    listed = rita_api.get("/api/v1/messages/conversations/").json()
    assert listed["count"] == 1
    assert (listed["results"][0]["member"], listed["results"][0]["unread"]) == ("bob", 2)
    # the sender has nothing unread: his own messages are not counted
    assert bob_api.get("/api/v1/messages/conversations/").json()["results"][0]["unread"] == 0
    thread = rita_api.get(f"/api/v1/messages/conversations/{conversation}/").json()
    assert [m["body"] for m in thread["results"]] == ["and another", "private words"]
    assert (thread["conversation"]["member"], thread["conversation"]["unread"]) == ("bob", 2)
    assert rita_api.get("/api/v1/messages/unread/").json() == {"unread": 0}
    assert not Message.objects.filter(read_at__isnull=True).exists()


def test_the_sender_reading_the_thread_does_not_mark_it_read(bob_api, rita_api) -> None:
    conversation, _message = _conversation_with_a_message(bob_api)
    assert bob_api.get(f"/api/v1/messages/conversations/{conversation}/").status_code == 200
    assert rita_api.get("/api/v1/messages/unread/").json() == {"unread": 1}


def test_only_the_recipient_marks_one_message_read(bob_api, rita_api) -> None:
    _conversation, message = _conversation_with_a_message(bob_api)
    refused = bob_api.post(f"/api/v1/messages/{message}/read/")
    assert refused.status_code == 403
    assert Message.objects.get().read_at is None
    done = rita_api.post(f"/api/v1/messages/{message}/read/")
    assert done.status_code == 200
    assert done.json()["read_at"] is not None
    assert rita_api.post(f"/api/v1/messages/{message}/read/").json()["read_at"] == \
        done.json()["read_at"]


def test_the_recipient_reports_a_message_once_and_it_is_audited(bob_api, rita_api,
                                                                rita) -> None:
    _conversation, message = _conversation_with_a_message(bob_api)
    first = rita_api.post(f"/api/v1/messages/{message}/reports/", {"reason": "스팸입니다"},
                          format="json")
    assert first.status_code == 201
    assert first.json()["reason"] == "스팸입니다"
    again = rita_api.post(f"/api/v1/messages/{message}/reports/", {"reason": "again"},
                          format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    report = MessageReport.objects.get()
    assert (report.reporter, report.reason) == (rita, "스팸입니다")
    assert AuditEvent.objects.filter(action="message.report",
                                     target_id=str(report.pk)).count() == 1


def test_the_sender_cannot_report_their_own_message(bob_api, rita) -> None:
    _conversation, message = _conversation_with_a_message(bob_api)
    assert bob_api.post(f"/api/v1/messages/{message}/reports/", {},
                        format="json").status_code == 403
    assert MessageReport.objects.count() == 0


def test_a_report_reason_is_checked(bob_api, rita_api) -> None:
    _conversation, message = _conversation_with_a_message(bob_api)
    response = rita_api.post(f"/api/v1/messages/{message}/reports/",
                             {"reason": "r" * 1001}, format="json")
    assert response.status_code == 400
    assert MessageReport.objects.count() == 0


def test_blocks_list_refuse_oneself_and_unknown_members(bob_api, bob, rita) -> None:
    assert bob_api.post("/api/v1/blocks/", {"username": "bob"},
                        format="json").json()["error"]["code"] == "self_block"
    assert bob_api.post("/api/v1/blocks/", {"username": "ghost"},
                        format="json").status_code == 404
    assert bob_api.post("/api/v1/blocks/", {"username": 5}, format="json").status_code == 400
    assert bob_api.post("/api/v1/blocks/", {"username": "rita"},
                        format="json").status_code == 201
    assert bob_api.post("/api/v1/blocks/", {"username": "rita"},
                        format="json").status_code == 200
    listed = bob_api.get("/api/v1/blocks/").json()
    assert [b["username"] for b in listed["results"]] == ["rita"]
    assert Block.objects.count() == 1
    assert bob_api.delete("/api/v1/blocks/rita/").status_code == 204
    # unblocking again, or a member never blocked, or nobody at all: the same 404
    again, ghost = bob_api.delete("/api/v1/blocks/rita/"), bob_api.delete("/api/v1/blocks/ghost/")
    assert (again.status_code, again.json()) == (ghost.status_code, ghost.json()) == (
        404, ghost.json())
    assert AuditEvent.objects.filter(action__in=["member.block", "member.unblock"]).count() == 2


def test_one_members_block_list_is_their_own(bob_api, carol_api, rita) -> None:
    bob_api.post("/api/v1/blocks/", {"username": "rita"}, format="json")
    assert carol_api.get("/api/v1/blocks/").json()["count"] == 0
    assert carol_api.delete("/api/v1/blocks/rita/").status_code == 404
    assert Block.objects.count() == 1


def test_a_flood_of_blocks_is_rate_limited(bob_api, rita, rob, settings) -> None:
    settings.MESSAGING_BLOCK_RATE = "1/hour"
    assert bob_api.post("/api/v1/blocks/", {"username": "rita"},
                        format="json").status_code == 201
    assert bob_api.post("/api/v1/blocks/", {"username": "rob"},
                        format="json").status_code == 429


def test_a_mistyped_rate_stops_the_start(settings) -> None:
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    settings.MESSAGING_SEND_RATE = "lots"
    with pytest.raises(ImproperlyConfigured, match="PEERMARK_MESSAGING_SEND_RATE"):
        apps.get_app_config("messaging").ready()
