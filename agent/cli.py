"""``python -m agent``: the desktop agent's command line.

Each subcommand is a thin function over ``Agent`` (context.py) and the wire modules;
errors a person can act on print as one line, with exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import AgentHome, ConfigError, default_data_dir
from agent.context import Agent, AgentError
from agent.library import OwnedLicence
from agent.platform import PlatformError, PlatformUnreachableError
from agent.store import StoreError
from agent.trust import TrustError
from licensing.core import DeviceKeys

Handler = Callable[[Agent, argparse.Namespace], int]


def _print(args: argparse.Namespace, human: str, data: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human)


# --- commands --------------------------------------------------------------------------------


def cmd_init(agent: Agent, args: argparse.Namespace) -> int:
    """Make this install's device keys (once) and register them if logged in."""
    agent.home.ensure()
    if args.platform:
        agent.config.platform_url = args.platform
    if args.name:
        agent.config.device_name = args.name
    if args.port is not None:
        agent.config.listen_port = args.port
    path = agent.home.device_key_path
    if path.exists() and not args.force:
        keys = DeviceKeys.load(path)
        created = False
    else:
        keys = DeviceKeys.generate()
        keys.save(path, overwrite=args.force)
        created = True
    agent.home.save_config(agent.config)
    registered = False
    if agent.config.token:
        _register_device(agent, keys)
        registered = True
    _print(args, "\n".join([
        f"{'Made' if created else 'Kept'} device keys: {keys.device_id}",
        f"Data folder: {agent.home.root}",
        f"Platform: {agent.config.platform_url}",
        "Registered with the platform." if registered else "Next: `login` to register it.",
    ]), {"device_id": keys.device_id, "created": created, "registered": registered,
         "data_dir": str(agent.home.root)})
    return 0


def _register_device(agent: Agent, keys: DeviceKeys) -> None:
    public = keys.public.to_b64url()
    agent.platform.device_register(name=agent.config.device_name, signing_key=public["sig"],
                                   kem_key=public["kem"])
    agent.refresh_trust()


def _token_from_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise AgentError(f"cannot read the token file {path}: {error}") from error
    if not token or len(token) > 200 or any(c.isspace() for c in token):
        raise AgentError(f"{path} does not hold an API token")
    return token


def cmd_login(agent: Agent, args: argparse.Namespace) -> int:
    """Exchange a password for an API token, or take a token an operator issued (kept in
    the config, mode 600), and register this device."""
    from agent.platform import PlatformClient

    if args.platform:
        agent.home.ensure()
        agent.config.platform_url = args.platform
    if args.token_file is not None:
        if args.username or args.password_stdin:
            raise AgentError("`login --token-file` takes no username or password")
        token = _token_from_file(args.token_file)
        with PlatformClient(agent.config.platform_url, token) as client:
            username = str(client.me()["username"])
    else:
        username = args.username or input("Username: ")
        password = (sys.stdin.readline().rstrip("\n") if args.password_stdin
                    else getpass.getpass())
        with PlatformClient(agent.config.platform_url) as anonymous:
            token = anonymous.token_create(username=username, password=password,
                                           name=f"agent on {agent.config.device_name}")
    agent.config.token = token
    agent.config.username = username
    agent.home.save_config(agent.config)
    agent.close()
    agent.__dict__.pop("platform", None)
    if agent.home.device_key_path.exists():
        _register_device(agent, agent.device)
    _print(args, f"Logged in as {username}.", {"username": username})
    return 0


def cmd_search(agent: Agent, args: argparse.Namespace) -> int:
    works = agent.platform.works_search(" ".join(args.query))
    lines = [f"{w['id']}  {w['price']['display']:>10}  {w['title']}  ({w['owner']}, "
             f"{w['media_type']}, {_size(w['size_bytes'])})" for w in works]
    _print(args, "\n".join(lines) or "No works found.", works)
    return 0


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def cmd_buy(agent: Agent, args: argparse.Namespace) -> int:
    existing = agent.licences.for_work(args.work)
    if existing is not None and not args.again:
        _print(args, f"You already hold licence {existing.licence_id} for this work "
                     "(use --again to buy another).", {"licence_id": existing.licence_id})
        return 0
    from agent.workflow import buy  # loads the transfer modules only when buying

    licence = buy(agent, args.work)
    _print(args, f"Bought “{licence.title}”: licence {licence.licence_id}.\n"
                 f"Download it with: get {licence.work_id}",
           {"licence_id": licence.licence_id, "purchase_id": licence.purchase_id})
    return 0


def cmd_wallet(agent: Agent, args: argparse.Namespace) -> int:
    if args.topup:
        amount, currency = args.topup
        try:
            amount_minor = int(amount)
        except ValueError:
            raise AgentError("Top up a whole number of minor units, e.g. `--topup 2500 EUR` "
                             "for €25.00.") from None
        agent.require_login()
        topup = agent.platform.topup(amount_minor=amount_minor, currency=currency.upper())
        _print(args, f"Top-up of {topup['display']} requested ({topup['state']}); it is "
                     "credited when the payment provider confirms.", topup)
        return 0
    agent.require_login()
    balances = agent.platform.wallet()["balances"]
    lines = [f"{b['kind']:<16}{b['currency']:<5}{b['display']:>14}" for b in balances]
    _print(args, "\n".join(lines) or "Nothing yet: `wallet --topup 2500 EUR`.", balances)
    return 0


def cmd_library(agent: Agent, args: argparse.Namespace) -> int:
    from agent.store import PieceStore

    store = PieceStore(agent.home.store_dir)
    rows = []
    for licence in agent.licences.all():
        rows.append({"licence_id": licence.licence_id, "work_id": licence.work_id,
                     "title": licence.title, "expires_at": licence.expires_at,
                     "delivered": [str(p) for p in _delivered(agent, licence)]})
    held = [{"work_id": work_id, "have": have, "pieces": total}
            for work_id, have, total in store.summary()]
    lines = ["Licences:"] + [f"  {r['licence_id']}  {r['title']}  (until {r['expires_at'][:10]})"
                             + (f"\n    -> {r['delivered'][0]}" if r["delivered"] else "")
                             for r in rows]
    lines += ["Pieces held (shared when you run `serve`):"] + [
        f"  {h['work_id']}  {h['have']}/{h['pieces']}" for h in held]
    _print(args, "\n".join(lines), {"licences": rows, "holdings": held})
    return 0


def _delivered(agent: Agent, licence: OwnedLicence) -> list[Path]:
    folder = agent.home.library_dir
    return sorted(folder.glob(f"{licence.work_id}*")) if folder.exists() else []


def cmd_status(agent: Agent, args: argparse.Namespace) -> int:
    status: dict[str, Any] = {
        "data_dir": str(agent.home.root), "platform": agent.config.platform_url,
        "logged_in_as": agent.config.username or None,
        "device_id": agent.device.device_id if agent.home.device_key_path.exists() else None,
        "listen": f"{agent.config.listen_host}:{agent.config.listen_port}",
    }
    try:
        agent.platform.works_search(page_size=1)
        status["platform_reachable"] = True
    except (PlatformUnreachableError, PlatformError):
        status["platform_reachable"] = False
    from agent.outbox import OrderOutbox

    if agent.home.outbox_path.exists():
        status["orders_waiting_for_metering"] = OrderOutbox(agent.home.outbox_path).count_pending()
    status["revocation_list_version"] = agent.trust.revocations_version
    evidence = agent.trust.equivocation()
    if evidence is not None:
        status["revocation_list_equivocation"] = (
            f"two different lists signed as version {evidence.get('version')}; the first is "
            f"kept; {'reported to' if evidence.get('reported') else 'not yet reported to'} "
            "the platform")
    _print(args, "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in status.items()), status)
    return 0


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="Peermark's desktop agent: search, buy, download from peers, share.",
    )
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the agent's folder (default {default_data_dir()})")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="make this device's keys and register them")
    p.add_argument("--platform", help="the platform's URL (default http://127.0.0.1:8000)")
    p.add_argument("--name", help="a name for this device")
    p.add_argument("--port", type=_port, help="the port `serve` listens on (default 7070)")
    p.add_argument("--force", action="store_true", help="replace existing device keys")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("login", help="log in to the platform and register this device")
    p.add_argument("--username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--token-file", type=Path, default=None,
                   help="use the API token in this file instead of a password (a seed agent's)")
    p.add_argument("--platform", help="the platform's URL, if not the one `init` set")
    p.set_defaults(handler=cmd_login)

    p = sub.add_parser("search", help="search the catalogue")
    p.add_argument("query", nargs="*", help="words to look for in titles and descriptions")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("buy", help="buy a work's licence for this device")
    p.add_argument("work", help="the work's id (from `search`)")
    p.add_argument("--again", action="store_true", help="buy even if you hold a licence")
    p.set_defaults(handler=cmd_buy)

    p = sub.add_parser("get", help="buy if needed, then download, verify, decrypt and mark")
    p.add_argument("work", help="the work's id (from `search`)")
    p.add_argument("--out", type=Path, help="where to write the file (default: the library)")
    p.add_argument("--limit-rate", type=_rate, default=None,
                   help="download cap, e.g. 500K or 20M bytes per second")
    p.add_argument("--no-buy", action="store_true", help="fail instead of buying")
    p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_get"))

    p = sub.add_parser("view", help="open a work in a viewer without keeping a copy "
                                    "(for licences that permit viewing)")
    p.add_argument("work", help="the work's id")
    p.add_argument("--with", dest="viewer", metavar="COMMAND",
                   help="the viewer to run on the file (default: $PEERMARK_VIEWER, xdg-open)")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="delete the copy as soon as the viewer exits (a viewer that stays "
                        "in the foreground), without asking")
    p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_view"))

    for name in ("serve", "share"):
        p = sub.add_parser(name, help="run the daemon: serve held pieces, announce, meter")
        p.add_argument("--host", help="address to listen on (default from config)")
        p.add_argument("--port", type=_port, help="port to listen on (default from config)")
        p.add_argument("--limit-rate", type=_rate, default=None, help="upload cap")
        p.add_argument("--import-from", type=Path, default=None,
                       help="a folder of ciphertext files to seed every work from "
                            "(the platform's seed agent)")
        p.add_argument("--peer", action="append", default=[],
                       help="a known peer URL for the Gnutella fallback (repeatable)")
        p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_serve"))

    p = sub.add_parser("status", help="what this agent is and holds")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("library", help="your licences and the pieces you hold")
    p.set_defaults(handler=cmd_library)

    p = sub.add_parser("wallet", help="your balances, or top up")
    p.add_argument("--topup", nargs=2, metavar=("AMOUNT_MINOR", "CURRENCY"),
                   help="ask for a top-up, e.g. --topup 2500 EUR")
    p.set_defaults(handler=cmd_wallet)
    return parser


def _rate(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    value = text.strip().upper().removesuffix("B").removesuffix("/S")
    suffix = value[-1:] if value[-1:] in units and value[-1:] != "" else ""
    number = value[: -1] if suffix else value
    try:
        rate = int(float(number) * units[suffix])
    except (ValueError, OverflowError):  # not a number, nan, inf
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (try 500K or 20M)") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError("a rate must be positive")
    return rate


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _lazy(module: str, name: str) -> Handler:
    """Import transfer commands only when used: `search` should not load aiohttp."""

    def run(agent: Agent, args: argparse.Namespace) -> int:
        import importlib

        handler: Handler = getattr(importlib.import_module(module), name)
        return handler(agent, args)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        agent = Agent(AgentHome(args.data_dir or default_data_dir()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result: int = args.handler(agent, args)
        return result
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except PlatformUnreachableError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except PlatformError as exc:
        print(f"error: the platform said: {exc} [{exc.code}]", file=sys.stderr)
    except (TrustError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:  # a full disk, a folder we may not write: say which, not a trace
        print(f"error: {exc.strerror or exc}"
              + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        agent.close()
    return 1
