"""``messages``: private messages with other members, through the platform's REST API.

``messages`` lists conversations with their unread counts, ``messages read NAME`` shows
the thread with NAME (and marks it read), ``messages send NAME [TEXT]`` sends TEXT (or
standard input). Bodies arrive as sanitised HTML; they are shown as plain text, with
every control character a terminal would act on removed, so a message cannot move the
cursor, recolour the screen or retitle the window.

``messages send NAME TEXT --direct`` seals TEXT end to end to each of NAME's agent
devices instead (agent/direct_messages.py): straight to each live device (mode
``direct``), through the platform's relay to the others (``relayed``). Without
``--direct`` a message goes through the platform (``platform``), readable on the portal:
sealing is a choice, because a sealed message reaches only the recipient's agents.
``messages`` and ``messages read`` first fetch what the relay holds for this device, and
show every message labelled with its mode.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from agent import display
from agent.context import Agent, AgentError
from agent.direct_messages import (
    InboxFullError,
    NoDevicesError,
    StoredMessage,
    fetch_relayed,
    folder_for,
    send_sealed,
)
from agent.display import ago_text, table
from agent.platform import PlatformError, PlatformUnreachableError
from licensing.core import LicensingError

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
    """What a member wrote, safe for the reader's terminal, its lines kept."""
    return display.terminal_safe(text, keep_lines=True)


def body_text(html: str) -> str:
    parser = _PlainText()
    parser.feed(html)
    parser.close()
    lines = "".join(parser.parts).split("\n")
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    return terminal_safe(text)


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


def _sealed_messages(agent: Agent) -> tuple[list[StoredMessage], str]:
    """This device's end-to-end encrypted messages, after fetching what the relay holds
    for it; and a note when they could not all be fetched."""
    if not agent.home.device_key_path.exists() or not agent.config.username:
        return [], ""
    folder = folder_for(agent)
    note = ""
    try:
        _stored, refused = fetch_relayed(agent.platform, folder,
                                         device_id=agent.device.device_id)
        if refused:
            note = f"{refused} relayed message(s) did not verify and were dropped."
    except PlatformUnreachableError:
        note = "The platform is unreachable: relayed messages not fetched."
    except InboxFullError:
        note = "This agent's message folder is full: relayed messages left on the platform."
    except PlatformError as error:
        note = f"Relayed messages not fetched: {error}"
    return folder.messages(), note


def _sealed_json(message: StoredMessage) -> dict[str, Any]:
    return {"message_id": message.message_id, "mode": message.mode,
            "direction": message.direction, "member": message.member,
            "created_at": datetime.fromtimestamp(message.created_at, UTC).isoformat(),
            "subject": message.subject, "body": message.body,
            **({"devices": message.devices} if message.direction == "out" else {}),
            **({"error": message.error} if message.error else {})}


def _sealed_lines(message: StoredMessage, now: datetime, *, name: str | None = None) -> list[str]:
    when = ago_text((now - datetime.fromtimestamp(message.created_at, UTC)).total_seconds())
    if message.error:
        return [f"[{message.mode}] (cannot be opened: {terminal_safe(message.error)})"]
    if message.direction == "out":
        who = "you" if name else f"you → {terminal_safe(message.member)}"
    else:
        who = terminal_safe(message.member)
    head = f"[{message.mode}] {who} · {when}" + (
        f" · {terminal_safe(message.subject)}" if message.subject else "")
    return [head, *("  " + line for line in terminal_safe(message.body).split("\n"))]


def _list(agent: Agent, args: argparse.Namespace) -> int:
    conversations = list(agent.platform.conversations())
    sealed, note = _sealed_messages(agent)
    now = datetime.now(UTC)
    unread = sum(int(c["unread"]) for c in conversations)
    if not conversations and not sealed:
        human = "No messages yet. Send one: messages send NAME TEXT"
    else:
        lines: list[str] = []
        if conversations:
            rows = [[terminal_safe(c["member"]), str(c["unread"]),
                     display.when_text(c["last_message_at"], now)] for c in conversations]
            lines += [*table(["WITH", "UNREAD", "LAST"], rows, right=[1]),
                      "", f"{unread} unread [platform]. Read one: messages read NAME"]
        if sealed:
            lines += ["", "End-to-end encrypted (on this device only):"]
            for message in sealed:
                lines += _sealed_lines(message, now)
        human = "\n".join(lines).strip("\n")
    if note:
        human += f"\n{note}"
    _out(args, human, {"unread": unread, "conversations": conversations,
                       "sealed": [_sealed_json(m) for m in sealed],
                       **({"note": note} if note else {})})
    return 0


def _read(agent: Agent, args: argparse.Namespace) -> int:
    name = args.name
    found = _find_conversation(agent, name)
    sealed, note = _sealed_messages(agent)
    sealed = [m for m in sealed if m.member == name]
    if found is None and sealed:
        now = datetime.now(UTC)
        lines = [f"Conversation with {terminal_safe(name)} (end-to-end encrypted only)"]
        for message in sealed[-args.last:]:
            lines += ["", *_sealed_lines(message, now, name=name)]
        if note:
            lines.append(note)
        _out(args, "\n".join(lines), {"messages": [], "count": 0,
                                       "sealed": [_sealed_json(m) for m in sealed]})
        return 0
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
        lines.append(f"[platform] {who} · {display.when_text(message['created_at'], now)}{new}"
                     + (f" · {terminal_safe(message['subject'])}" if message["subject"] else ""))
        lines.extend("  " + line for line in body_text(message["body"]).split("\n"))
    if sealed:
        lines += ["", "End-to-end encrypted (on this device only):"]
        for sealed_message in sealed[-args.last:]:
            lines += ["", *_sealed_lines(sealed_message, now, name=name)]
    if note:
        lines.append(note)
    _out(args, "\n".join(lines), {"conversation": thread["conversation"],
                                  "count": thread["count"], "messages": messages,
                                  "sealed": [_sealed_json(m) for m in sealed]})
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
    if args.direct:
        return _send_sealed(agent, args, text)
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


def _send_sealed(agent: Agent, args: argparse.Namespace, text: str) -> int:
    if not agent.config.username:
        raise AgentError("Log in again (`login`) so this agent knows your username.")
    try:
        result = send_sealed(agent.platform, agent.device, sender=agent.config.username,
                             to=args.name, body=text, subject=args.subject)
    except NoDevicesError:
        raise AgentError(f"{terminal_safe(args.name)} has no agent device to seal a message "
                         "to: send it without --direct.") from None
    except PlatformError as error:
        raise _refusal(error, args.name) from error
    except LicensingError as error:
        raise AgentError(f"Cannot seal the message: {error}") from error
    folder_for(agent).record_sent(message_id=result.message_id, to=args.name, body=text,
                                  subject=args.subject, created_at=int(datetime.now(UTC)
                                                                       .timestamp()),
                                  modes=result.modes)
    direct = sum(1 for mode in result.modes.values() if mode == "direct")
    relayed = len(result.modes) - direct
    parts = [f"{count} {what}" for count, what in ((direct, "directly"),
                                                   (relayed, "through the platform's relay"))
             if count]
    human = (f"Sent to {terminal_safe(args.name)}, end-to-end encrypted to "
             f"{len(result.modes)} device(s): {', '.join(parts)}.")
    _out(args, human, {"message_id": result.message_id, "recipient": args.name,
                       "devices": result.modes})
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
    send.add_argument("--direct", action="store_true",
                      help="seal it end to end to the member's agent devices: sent straight "
                           "to each live one, relayed (unreadable) by the platform to the "
                           "others; the portal does not show it")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("give 1 to 100")
    return value
