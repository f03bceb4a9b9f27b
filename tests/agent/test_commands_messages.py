"""``messages`` against a live platform: list, read and send, the clear errors (blocked,
rate-limited with the wait, too long, unknown member), and a message that tries to
drive the reader's terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.cache import cache

from agent.commands_messages import body_text, terminal_safe
from exchange.messaging.models import Block, Message
from exchange.messaging.services import message_send
from tests.agent.conftest import run_cli

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"


def test_send_list_and_read_a_conversation(bob_home, capsys, rita) -> None:
    code, sent, err = run_cli(bob_home, capsys, "messages", "send", "rita",
                           "Is the harbour print in <b>A3</b>?", "--subject", "A3")
    assert code == 0, err
    assert (sent["recipient"], sent["body"], sent["subject"]) == (
        "rita", "Is the harbour print in <b>A3</b>?", "A3")
    message_send(sender=rita, to="bob", body="<p>Yes.</p><p>See <a href=\"https://example.org/a3\">"
                 "the sizes</a></p><ul><li>A3</li><li>A2</li></ul>")
    code, listed, _ = run_cli(bob_home, capsys, "messages")
    assert code == 0
    assert listed["unread"] == 1
    assert [(c["member"], c["unread"]) for c in listed["conversations"]] == [("rita", 1)]
    code, text, _ = run_cli(bob_home, capsys, "messages", json_out=False)
    assert "rita" in text
    assert "1 unread" in text
    code, thread, _ = run_cli(bob_home, capsys, "messages", "read", "rita", json_out=False)
    assert code == 0
    assert "Conversation with rita (2 messages)" in thread
    assert "you · just now · A3\n  Is the harbour print in A3?" in thread
    assert ("rita · just now [new]\n  Yes.\n  See the sizes <https://example.org/a3>\n"
            "  - A3\n  - A2") in thread
    code, listed, _ = run_cli(bob_home, capsys, "messages")
    assert listed["unread"] == 0
    assert Message.objects.filter(recipient__username="bob", read_at__isnull=True).count() == 0
    assert Message.objects.filter(recipient__username="rita", read_at__isnull=True).count() == 1


def test_send_reads_the_body_from_stdin(bob_home, capsys, monkeypatch, rita) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("안녕하세요,\n작가님!\n"))
    code, _sent, err = run_cli(bob_home, capsys, "messages", "send", "rita")
    assert code == 0, err
    assert Message.objects.get().body == "안녕하세요,\n작가님!"


def test_a_blocked_sender_is_told_plainly_and_nothing_is_stored(bob_home, capsys, bob,
                                                                 rita) -> None:
    Block.objects.create(blocker=rita, blocked=bob)
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "rita", "hello?")
    assert code == 1
    assert err.strip() == "error: rita does not accept messages from you."
    assert Message.objects.count() == 0


def test_rate_limited_says_how_long_to_wait(bob_home, capsys, rita, settings) -> None:
    settings.MESSAGING_SEND_RATE = "1/hour"
    assert run_cli(bob_home, capsys, "messages", "send", "rita", "one")[0] == 0
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "rita", "two")
    assert code == 1
    assert err.startswith("error: Too many messages for now: try again in ")
    seconds = int(err.split("try again in ")[1].split(" s")[0])
    assert 1 <= seconds <= 3600
    assert Message.objects.count() == 1


def test_too_long_unknown_empty_and_oneself(bob_home, capsys, monkeypatch, rita,
                                            settings) -> None:
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "rita", "x" * 5001)
    assert (code, err.strip()) == (1, "error: The message is too long: at most 5000 "
                                      "characters (this has 5001).")
    settings.MESSAGING_MAX_BODY_CHARS = 10  # the platform's own limit, lower than ours
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "rita", "x" * 11)
    assert (code, err.strip()) == (1, "error: The message is too long: At most 10 "
                                      "characters (this has 11).")
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "nobody", "hi")
    assert (code, err.strip()) == (1, "error: No member named nobody.")
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "bob", "hi")
    assert (code, err.strip()) == (1, "error: You cannot send a message to yourself.")
    monkeypatch.setattr("sys.stdin", io.StringIO("   \n"))
    code, _out, err = run_cli(bob_home, capsys, "messages", "send", "rita")
    assert (code, err.strip()) == (1, "error: Nothing to send: give the text, or pipe it in.")
    code, _out, err = run_cli(bob_home, capsys, "messages", "read", "carol")
    assert code == 1
    assert "No conversation with carol" in err
    assert Message.objects.count() == 0


def test_a_message_cannot_drive_the_terminal(bob_home, capsys, rita) -> None:
    # control characters are refused by the platform; as character references they
    # would survive sanitising, and the agent must drop them when it shows the text
    message_send(sender=rita, to="bob", body="red &#27;[31malert&#27;[0m &#x202e;txt.exe "
                                             "bell&#7;")
    code, thread, _ = run_cli(bob_home, capsys, "messages", "read", "rita", json_out=False)
    assert code == 0
    for control in ("\x1b", "\u202e", "\x07"):
        assert control not in thread
    assert "red [31malert[0m txt.exe bell" in thread


def test_not_logged_in(live_server, tmp_path, capsys) -> None:
    home = tmp_path / "fresh"
    run_cli(home, capsys, "init", "--platform", live_server.url)
    code, _out, err = run_cli(home, capsys, "messages")
    assert (code, err.strip()) == (1, "error: Not logged in: run `login` first.")


@pytest.mark.parametrize(("html", "text"), [
    ("<p>one</p><p>two</p>", "one\ntwo"),
    ("a<br>b", "a\nb"),
    ("&lt;script&gt;", "<script>"),
    ("<b>bold</b> and <em>em</em>", "bold and em"),
    ("x\u200b\u2066y", "xy"),
])
def test_body_text(html: str, text: str) -> None:
    assert body_text(html) == text


def test_terminal_safe_keeps_newlines_tabs_and_korean() -> None:
    assert terminal_safe("가\t나\n다\r\x1b\x9b") == "가\t나\n다"
