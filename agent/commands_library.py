"""``library --devices``, ``--add`` and ``--move-here``: one library on every device.

A work bought on one of the member's devices may be on several of them at once, up to the
limit its rights holder set. ``--devices`` lists, per work, the licence each device holds
(this one marked); ``--add WORK_ID`` asks the platform for a licence of this device's own,
re-issued from one the member holds (no payment), after which ``get WORK_ID`` works as
after a purchase; ``--move-here LICENCE_ID`` moves a lost device's licence to this one
(the old licence is revoked). Without an option, ``library`` lists what it did before.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from agent.config import write_private
from agent.context import Agent, AgentError
from agent.display import terminal_safe
from agent.library import OwnedLicence
from agent.platform import PlatformError
from agent.workflow import reissued_here

_REFUSALS = {
    "device_limit": "{message}",
    "licence_revoked": "That licence is revoked: {message}",
    "licence_expired": "That licence has expired.",
    "device_revoked": "This device was revoked on the platform; make new keys with "
                      "`init --force`.",
    "unknown_device": "This device is not registered to your account: run `init` first.",
    "same_device": "That licence is already on this device.",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    """The ``library`` command's options for devices (cli.py registers the command)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--devices", action="store_true",
                       help="list, per work, the licence each of your devices holds")
    group.add_argument("--add", metavar="WORK_ID", type=_an_id,
                       help="get a licence for this device from one you hold (no payment)")
    group.add_argument("--move-here", metavar="LICENCE_ID", type=_an_id,
                       help="move a licence from a lost device to this one (revokes it there)")
    parser.set_defaults(handler=cmd_library)


def _an_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {text!r}") from None


def _out(args: argparse.Namespace, human: str, data: Any) -> None:
    sys.stdout.write((json.dumps(data, indent=2, default=str) if args.json else human) + "\n")


def cmd_library(agent: Agent, args: argparse.Namespace) -> int:
    if getattr(args, "devices", False):
        return _devices(agent, args)
    if getattr(args, "add", None):
        return _add(agent, args, args.add)
    if getattr(args, "move_here", None):
        return _move_here(agent, args, args.move_here)
    from agent.cli import cmd_library as plain_library

    return plain_library(agent, args)


def _this_device(agent: Agent) -> str | None:
    return agent.device.device_id if agent.home.device_key_path.exists() else None


def _state(licence: dict[str, Any]) -> str:
    if licence.get("revoked_at"):
        return "revoked"
    if licence.get("device_revoked"):
        return "device revoked"
    if not licence.get("takes_slot"):
        return "expired"
    return "active"


def _devices(agent: Agent, args: argparse.Namespace) -> int:
    agent.require_login()
    here = _this_device(agent)
    works = list(agent.platform.library())
    lines = []
    for work in works:
        lines.append(f"{terminal_safe(str(work['title']))}  ({work['work']})  "
                     f"{work['devices_used']} of {work['device_limit']} devices")
        for licence in work["licences"]:
            licence["this_device"] = licence["device"] == here
            mark = "  <- this device" if licence["this_device"] else ""
            name = terminal_safe(str(licence["device_name"]))[:30]
            lines.append(f"  {name:30}  {licence['device'][:12]}…  "
                         f"{_state(licence):14}  {licence['id']}{mark}")
    if not works:
        lines.append("No works yet: `buy` one, or buy on the web.")
    _out(args, "\n".join(lines), {"works": works, "this_device": here})
    return 0


def _refusal(error: PlatformError) -> AgentError:
    template = _REFUSALS.get(error.code)
    if template is None:
        return AgentError(f"the platform said: {error} [{error.code}]")
    return AgentError(template.format(message=error.message))


def _save(agent: Agent, licence: dict[str, Any], work_id: str) -> OwnedLicence:
    """Keep the licence in this agent's library, as a purchase's is kept."""
    owned = OwnedLicence.from_platform(licence, agent.platform.work(work_id),
                                       str(agent.platform.manifest(work_id)["token"]))
    agent.licences.save(owned)
    return owned


def _add(agent: Agent, args: argparse.Namespace, work_id: str) -> int:
    agent.require_login()
    here = agent.device.device_id  # no keys yet: "run init first"
    try:
        owned = reissued_here(agent, work_id)
    except PlatformError as exc:
        raise _refusal(exc) from exc
    if owned is None:
        raise AgentError("You hold no live licence for this work on any device: `buy` it "
                         "first.")
    _out(args, f"“{terminal_safe(owned.title)}” is licensed to this device: licence "
               f"{owned.licence_id}.\nDownload it with: get {work_id}",
         {"licence_id": owned.licence_id, "work_id": work_id, "device": here})
    return 0


def _move_here(agent: Agent, args: argparse.Namespace, licence_id: str) -> int:
    agent.require_login()
    here = agent.device.device_id
    # The key is kept until the move is done, so a retry after a lost answer replays it
    # (a new key would find the old licence revoked, by the move that did happen).
    pending = agent.home.licences_dir / "pending" / f"move-{licence_id}.key"
    if pending.exists():
        key = pending.read_text().strip()
    else:
        key = f"agent-move-{uuid.uuid4()}"
        write_private(pending, key.encode())
    try:
        moved = agent.platform.licence_move(licence_id=licence_id, to_device_id=here,
                                            idempotency_key=key)
    except PlatformError as exc:
        if exc.status < 500:
            pending.unlink(missing_ok=True)  # refused for good: a new attempt is new
        raise _refusal(exc) from exc
    work_id = str(moved["work"])
    owned = _save(agent, moved, work_id)
    pending.unlink(missing_ok=True)
    _out(args, f"“{terminal_safe(owned.title)}” moved to this device: licence {owned.licence_id} "
               f"(licence {licence_id} is revoked).\nDownload it with: get {work_id}",
         {"licence_id": owned.licence_id, "revoked": licence_id, "work_id": work_id})
    return 0
