"""``messages``: private messages with other members, through the platform's REST API.

``messages`` lists conversations with their unread counts, ``messages read NAME`` shows
the thread with NAME (and marks it read), ``messages send NAME [TEXT]`` sends TEXT (or
standard input). Bodies arrive as sanitised HTML; they are shown as plain text, with
every control character a terminal would act on removed, so a message cannot move the
cursor, recolour the screen or retitle the window.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from agent.context import Agent, AgentError
from agent.display import ago_text, table
from agent.platform import PlatformError, PlatformUnreachableError

#: refuse locally what the platform would refuse anyway (its default limit), so a huge
#: pipe into ``send`` is not uploaded first
MAX_BODY_CHARS = 5000
_BLOCK_ENDS = frozenset({"p", "li", "blockquote", "pre", "ol", "ul"})


class _PlainText(HTMLParser):
    """The sanitised HTML of a message as text: paragraphs and line breaks kept, list
    items dashed, a link's address after its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("- ")
        elif tag == "a":
            self._href.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_ENDS:
            self.parts.append("\n")
        elif tag == "a" and self._href:
            href = self._href.pop()
            if href:
                self.parts.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def terminal_safe(text: str) -> str:
    """``text`` without control or format characters (ESC, CR, BiDi overrides...) but
    newline and tab: what a member wrote must not drive the reader's terminal."""
    return "".join(char for char in text if char in "\n\t"
                   or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co"})


def body_text(html: str) -> str:
    parser = _PlainText()
    parser.feed(html)
    parser.close()
    lines = "".join(parser.parts).split("\n")
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    return terminal_safe(text)


def _when(stamp: str, now: datetime) -> str:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return terminal_safe(stamp)
    return ago_text((now - moment).total_seconds())


def _out(args: argparse.Namespace, human: str, data: Any) -> None:
    sys.stdout.write((json.dumps(data, indent=2, default=str) if args.json else human) + "\n")


def _refusal(error: PlatformError, name: str) -> AgentError:
    """A platform refusal as one line a person can act on."""
    who = terminal_safe(name)
    if error.code == "blocked":
        return AgentError(f"{who} does not accept messages from you.")
    if error.code == "you_blocked":
        return AgentError(f"You have blocked {who}: unblock them (on the portal's "
                          "Messages page) to write to them.")
    if error.code == "rate_limited":
        wait = f"{error.retry_after} s" if error.retry_after is not None else "a while"
        return AgentError(f"Too many messages for now: try again in {wait}.")
    if error.code == "not_found":
        return AgentError(f"No member named {who}.")
    if error.code == "self_message":
        return AgentError("You cannot send a message to yourself.")
    if error.code == "too_long":
        return AgentError(f"The message is too long: {error.message}")
    if error.code in ("empty", "invalid_characters", "invalid"):
        return AgentError(f"The message was refused: {error}")
    return AgentError(f"The platform said: {error} [{error.code}]")


def _find_conversation(agent: Agent, name: str) -> dict[str, Any] | None:
    for conversation in agent.platform.conversations():
        if conversation["member"] == name:
            return conversation
    return None


def cmd_messages(agent: Agent, args: argparse.Namespace) -> int:
    agent.require_login()
    action = getattr(args, "action", None)
    if action == "read":
        return _read(agent, args)
    if action == "send":
        return _send(agent, args)
    return _list(agent, args)


def _list(agent: Agent, args: argparse.Namespace) -> int:
    conversations = list(agent.platform.conversations())
    now = datetime.now(UTC)
    unread = sum(int(c["unread"]) for c in conversations)
    if not conversations:
        human = "No messages yet. Send one: messages send NAME TEXT"
    else:
        rows = [[terminal_safe(c["member"]), str(c["unread"]), _when(c["last_message_at"], now)]
                for c in conversations]
        human = "\n".join([*table(["WITH", "UNREAD", "LAST"], rows, right=[1]),
                           "", f"{unread} unread. Read one: messages read NAME"])
    _out(args, human, {"unread": unread, "conversations": conversations})
    return 0


def _read(agent: Agent, args: argparse.Namespace) -> int:
    name = args.name
    found = _find_conversation(agent, name)
    if found is None:
        raise AgentError(f"No conversation with {terminal_safe(name)}. Start one: "
                         f"messages send {terminal_safe(name)} TEXT")
    thread = agent.platform.conversation(str(found["id"]), page_size=args.last)
    messages = list(reversed(thread["results"]))  # oldest first, the latest last
    now = datetime.now(UTC)
    lines = [f"Conversation with {terminal_safe(name)} ({thread['count']} messages"
             + (f", showing the last {len(messages)}" if len(messages) < thread["count"]
                else "") + ")"]
    for message in messages:
        who = "you" if message["recipient"] == name else terminal_safe(message["sender"])
        new = " [new]" if message["read_at"] is None and message["sender"] == name else ""
        lines.append("")
        lines.append(f"{who} · {_when(message['created_at'], now)}{new}"
                     + (f" · {terminal_safe(message['subject'])}" if message["subject"] else ""))
        lines.extend("  " + line for line in body_text(message["body"]).split("\n"))
    _out(args, "\n".join(lines), {"conversation": thread["conversation"],
                                  "count": thread["count"], "messages": messages})
    return 0


def _send(agent: Agent, args: argparse.Namespace) -> int:
    if args.text is None or args.text == "-":
        text = sys.stdin.read(MAX_BODY_CHARS * 4 + 1)
    else:
        text = args.text
    text = text.strip()
    if not text:
        raise AgentError("Nothing to send: give the text, or pipe it in.")
    if len(text) > MAX_BODY_CHARS:
        raise AgentError(f"The message is too long: at most {MAX_BODY_CHARS} characters "
                         f"(this has {len(text) if len(text) <= MAX_BODY_CHARS * 4 else 'more'}).")
    # one key for this message: a retry after a lost answer cannot send it twice
    key = str(uuid.uuid4())
    try:
        try:
            sent = agent.platform.message_send(to=args.name, body=text, subject=args.subject,
                                               idempotency_key=key)
        except PlatformUnreachableError:
            sent = agent.platform.message_send(to=args.name, body=text, subject=args.subject,
                                               idempotency_key=key)
    except PlatformError as error:
        raise _refusal(error, args.name) from error
    _out(args, f"Sent to {terminal_safe(args.name)}.", sent)
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``messages`` on the main parser's subcommands."""
    p = sub.add_parser("messages", parents=[common],
                       help="private messages: list, read and send",
                       description="Private messages with other members. With no action, "
                                   "list your conversations and their unread counts.")
    p.set_defaults(handler=cmd_messages, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    read = actions.add_parser("read", parents=[common],
                              help="show the conversation with a member (marks it read)")
    read.add_argument("name", help="the member's username")
    read.add_argument("--last", type=_count, default=50,
                      help="how many of the latest messages to show (1 to 100, default 50)")
    send = actions.add_parser("send", parents=[common], help="send a member a message")
    send.add_argument("name", help="the member's username")
    send.add_argument("text", nargs="?", default=None,
                      help="the message (default, or '-': read it from standard input)")
    send.add_argument("--subject", default="", help="an optional subject")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("give 1 to 100")
    return value
