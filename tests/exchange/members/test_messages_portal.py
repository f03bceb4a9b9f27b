"""The portal's messages: inbox, thread, new message, blocks and reports, from the
members' side and an outsider's. Expected values are written out by hand."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from exchange.messaging.context_processors import unread_messages
from exchange.messaging.models import Block, Conversation, Message, MessageReport
from exchange.messaging.services import message_send


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(db) -> None:
    for path in ("/messages/", "/messages/new/", "/messages/blocks/",
                 f"/messages/{uuid.uuid4()}/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_a_new_message_from_a_work_page_link_lands_in_the_thread(bob, rita) -> None:
    client = _as(bob)
    form = client.get("/messages/new/?to=rita")
    assert form.status_code == 200
    assert 'value="rita"' in form.content.decode()
    once = form.context["form"].initial["once"]
    sent = client.post("/messages/new/", {"once": once, "to": "rita", "subject": "Hello",
                                          "body": "Do you sell <b>prints</b>?"})
    conversation = Conversation.objects.get()
    assert sent.status_code == 302
    assert sent["Location"] == f"/messages/{conversation.pk}/"
    # a double click or a reload with the same form sends nothing more
    again = client.post("/messages/new/", {"once": once, "to": "rita", "subject": "Hello",
                                           "body": "Do you sell <b>prints</b>?"})
    assert again.status_code == 302
    assert Message.objects.count() == 1
    page = _as(rita).get(f"/messages/{conversation.pk}/").content.decode()
    assert "Do you sell <b>prints</b>?" in page


def test_a_refused_message_shows_the_reason_and_stores_nothing(bob, rita) -> None:
    Block.objects.create(blocker=rita, blocked=bob)
    response = _as(bob).post("/messages/new/", {"once": "k1", "to": "rita", "body": "hi"})
    assert response.status_code == 400
    assert "This member does not accept messages from you." in response.content.decode()
    nobody = _as(bob).post("/messages/new/", {"once": "k2", "to": "ghost", "body": "hi"})
    assert nobody.status_code == 400
    assert "No such member." in nobody.content.decode()
    assert Message.objects.count() == 0


def test_a_script_is_never_on_the_page(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body='<script>alert("x")</script>'
                           '<img src=x onerror=alert(1)>hello', subject="<script>s</script>")
    page = _as(rita).get(f"/messages/{message.conversation_id}/").content.decode()
    assert "<script>alert" not in page
    assert "onerror" not in page
    assert "&lt;script&gt;s&lt;/script&gt;" in page  # the subject is plain text, escaped
    assert "hello" in page


def test_the_inbox_shows_unread_counts_and_reading_clears_them(bob, rita, rf) -> None:
    message_send(sender=bob, to="rita", body="one")
    message = message_send(sender=bob, to="rita", body="two")
    request = rf.get("/")
    request.user = rita
    assert unread_messages(request)["messages_unread"]() == 2
    inbox = _as(rita).get("/messages/").content.decode()
    assert 'class="unread-badge"' in inbox
    assert ">2<" in inbox
    _as(rita).get(f"/messages/{message.conversation_id}/")
    assert unread_messages(request)["messages_unread"]() == 0
    request.user = bob
    assert unread_messages(request)["messages_unread"]() == 0


def test_a_reply_in_the_thread(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body="question")
    client = _as(rita)
    page = client.get(f"/messages/{message.conversation_id}/")
    once = page.context["form"].initial["once"]
    reply = client.post(f"/messages/{message.conversation_id}/", {"once": once,
                                                                   "body": "answer"})
    assert reply.status_code == 302
    latest = Message.objects.order_by("-created_at").first()
    assert (latest.sender, latest.recipient, latest.body) == (rita, bob, "answer")
    too_long = client.post(f"/messages/{message.conversation_id}/",
                           {"once": "k3", "body": "x" * 5001})
    assert too_long.status_code == 400
    assert "At most 5000 characters (this has 5001)." in too_long.content.decode()
    assert Message.objects.count() == 2


def test_another_members_thread_is_not_found(bob, rita, carol) -> None:
    message = message_send(sender=bob, to="rita", body="private")
    client = _as(carol)
    assert client.get(f"/messages/{message.conversation_id}/").status_code == 404
    assert client.post(f"/messages/{message.conversation_id}/",
                       {"once": "k4", "body": "intrude"}).status_code == 404
    assert client.post(f"/messages/report/{message.pk}/").status_code == 404
    assert Message.objects.count() == 1
    assert Message.objects.get().read_at is None
    assert "private" not in client.get("/messages/").content.decode()


def test_block_and_unblock_from_the_thread(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body="hi")
    client = _as(rita)
    thread = f"/messages/{message.conversation_id}/"
    blocked = client.post("/messages/blocks/", {"username": "bob", "next": thread})
    assert (blocked.status_code, blocked["Location"]) == (302, thread)
    assert Block.objects.filter(blocker=rita, blocked=bob).exists()
    assert "Unblock bob" in client.get(thread).content.decode()
    assert client.get("/messages/blocks/").content.decode().count("bob") >= 1
    offsite = client.post("/messages/blocks/bob/remove/", {"next": "https://evil.example/"})
    assert (offsite.status_code, offsite["Location"]) == (302, "/messages/blocks/")
    assert not Block.objects.exists()
    assert client.post("/messages/blocks/bob/remove/").status_code == 404


def test_the_recipient_reports_from_the_thread(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body="rude words")
    response = _as(rita).post(f"/messages/report/{message.pk}/", {"reason": "rude"})
    assert response.status_code == 302
    assert MessageReport.objects.get().reason == "rude"
    assert "Reported." in _as(rita).get(f"/messages/{message.conversation_id}/").content.decode()
    assert _as(bob).post(f"/messages/report/{message.pk}/").status_code == 302
    assert MessageReport.objects.count() == 1


def test_the_admin_lists_reports(bob, rita, admin_user) -> None:
    message = message_send(sender=bob, to="rita", body="rude words")
    _as(rita).post(f"/messages/report/{message.pk}/", {"reason": "rude"})
    page = _as(admin_user).get("/admin/messaging/messagereport/")
    assert page.status_code == 200
    assert "rude words" in page.content.decode()
    assert _as(admin_user).get("/admin/messaging/message/").status_code == 404


def test_korean_pages_render(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body="안녕하세요")
    client = _as(rita)
    client.cookies["django_language"] = "ko"
    for path in ("/messages/", f"/messages/{message.conversation_id}/", "/messages/new/",
                 "/messages/blocks/"):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="ko")
        assert response.status_code == 200
        assert '<html lang="ko">' in response.content.decode()


def test_the_nav_badge_renders_from_the_context_processor(bob, rita, rf) -> None:
    from django.template import Context, Template

    message_send(sender=bob, to="rita", body="one")
    request = rf.get("/")
    request.user = rita
    badge = Template("{% if messages_unread %}({{ messages_unread }}){% endif %}")
    assert badge.render(Context(unread_messages(request))) == "(1)"
    request.user = bob
    assert badge.render(Context(unread_messages(request))) == ""
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert badge.render(Context(unread_messages(request))) == ""


def test_a_thread_with_a_closed_account_stays_readable_but_takes_no_reply(bob, rita) -> None:
    message = message_send(sender=bob, to="rita", body="before you left")
    bob.is_active = False
    bob.save()
    client = _as(rita)
    page = client.get(f"/messages/{message.conversation_id}/")
    assert page.status_code == 200
    assert "before you left" in page.content.decode()
    reply = client.post(f"/messages/{message.conversation_id}/", {"once": "k9",
                                                                   "body": "hello?"})
    assert reply.status_code == 400
    assert "No such member." in reply.content.decode()
    assert Message.objects.count() == 1


def test_the_to_parameter_is_escaped_and_names_nobody_until_sent(bob) -> None:
    page = _as(bob).get('/messages/new/?to="><script>alert(1)</script>')
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.content.decode()
    assert Message.objects.count() == 0
