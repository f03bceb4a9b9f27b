"""``follow``: follow rights holders, and the notification lines of ``status``.

``follow NAME`` follows a rights holder (their new works reach your feed and, if you keep
it on, your notifications), ``follow --remove NAME`` stops, ``follow --list`` lists whom
you follow. ``status`` shows the unread count and the latest notifications sent to the
agent; offline, it shows what it showed before, without them.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from agent.context import Agent, AgentError
from agent.display import terminal_safe, when_text
from agent.platform import PlatformError, PlatformUnreachableError

#: how many notifications ``status`` shows
STATUS_NOTIFICATIONS = 5


def _out(args: argparse.Namespace, human: str, data: Any) -> None:
    sys.stdout.write((json.dumps(data, indent=2, default=str) if args.json else human) + "\n")


def _refusal(error: PlatformError, name: str) -> AgentError:
    who = terminal_safe(name)
    if error.code == "not_found":
        return AgentError(f"No member named {who}.")
    if error.code == "follow_self":
        return AgentError("You cannot follow yourself.")
    if error.code == "not_a_rights_holder":
        return AgentError(f"{who} sells no works: only rights holders can be followed.")
    if error.code == "rate_limited":
        wait = f"{error.retry_after} s" if error.retry_after is not None else "a while"
        return AgentError(f"Too many follows for now: try again in {wait}.")
    return AgentError(f"The platform said: {error} [{error.code}]")


def cmd_follow(agent: Agent, args: argparse.Namespace) -> int:
    agent.require_login()
    try:
        if args.list:
            follows = list(agent.platform.follows())
            names = [terminal_safe(str(f["username"])) for f in follows]
            human = ("You follow:\n" + "\n".join(f"  {name}" for name in names)
                     if names else "You follow nobody yet.")
            _out(args, human, {"following": follows})
            return 0
        if not args.name:
            raise AgentError("Name a rights holder (follow NAME), or use --list.")
        if args.remove:
            agent.platform.unfollow(args.name)
            _out(args, f"You no longer follow {terminal_safe(args.name)}.",
                 {"unfollowed": args.name})
            return 0
        follow = agent.platform.follow(args.name, idempotency_key=str(uuid.uuid4()))
    except PlatformUnreachableError as exc:
        raise AgentError(f"Cannot reach the platform: {exc}") from exc
    except PlatformError as exc:
        raise _refusal(exc, args.name or "") from exc
    _out(args, f"You follow {terminal_safe(str(follow['username']))}: their new works reach "
               "your feed.", follow)
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``follow`` on the main parser's subcommands."""
    p = sub.add_parser("follow", parents=[common], help="follow a rights holder, or list whom",
                       description="Follow a rights holder: their new works reach your feed "
                                   "and your notifications.")
    p.add_argument("name", nargs="?", default=None, help="the rights holder's username")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--remove", action="store_true", help="stop following NAME")
    what.add_argument("--list", action="store_true", help="list whom you follow")
    p.set_defaults(handler=cmd_follow)


def notification_status(agent: Agent, *, now: datetime | None = None,
                        ) -> tuple[dict[str, Any], list[str]]:
    """What ``status`` adds: (JSON fields, text lines); nothing when logged out, offline
    or on a platform without notifications, so status still works as before."""
    if not agent.config.token:
        return {}, []
    try:
        unread = agent.platform.notifications_unread()
        latest = agent.platform.notifications_latest(count=STATUS_NOTIFICATIONS)
    except (PlatformUnreachableError, PlatformError):
        return {}, []
    moment = now or datetime.now(UTC)
    lines = [f"notifications: {unread} unread"]
    for note in latest:
        mark = "" if note.get("read_at") else " [new]"
        lines.append(f"  {terminal_safe(str(note.get('title', '')))} · "
                     f"{when_text(str(note.get('created_at', '')), moment)}{mark}")
    return {"notifications_unread": unread, "notifications": latest}, lines


