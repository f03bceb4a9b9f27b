"""``python -m agent``: the desktop agent's command line.

Each subcommand is a thin function over ``Agent`` (context.py) and the wire modules;
errors a person can act on print as one line, with exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.activity import Holding, Upload, holdings, recent_uploads
from agent.config import AgentHome, ConfigError, default_data_dir
from agent.context import Agent, AgentError
from agent.display import ago_text, days_text, size_text, table
from agent.library import OwnedLicence, WorkTitles
from agent.money import format_minor
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
    the config, mode 600), and register this device (making its keys on a first login)."""
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
    made = not agent.home.device_key_path.exists()
    if made:  # a first login sets the device up, as `init` would have
        agent.home.ensure()
        DeviceKeys.generate().save(agent.home.device_key_path)
        agent.__dict__.pop("device", None)
    _register_device(agent, agent.device)
    lines = [f"Logged in as {username}."]
    if made:
        lines.append(f"Made and registered this device's keys: {agent.device.device_id}")
    _print(args, "\n".join(lines), {"username": username, "device_id": agent.device.device_id,
                                   "device_created": made})
    return 0


def cmd_search(agent: Agent, args: argparse.Namespace) -> int:
    works = agent.platform.works_search(" ".join(args.query))
    _print(args, "\n".join(search_lines(works)) or "No works found.", works)
    return 0


def search_lines(works: list[dict[str, Any]]) -> list[str]:
    """A table of works with what a licence to each permits (its uses, for how long),
    since that, not only the price, is what a buyer chooses between."""
    rows = [[str(w["id"]), format_minor(w["price"]["amount_minor"], w["price"]["currency"]),
             ", ".join(w["terms"]["allowed_uses"]), days_text(w["terms"]["licence_days"]),
             size_text(w["size_bytes"]), f"{w['title']} ({w['owner']}, {w['media_type']})"]
            for w in works]
    if not rows:
        return []
    return table(["WORK", "PRICE", "USES", "LICENCE FOR", "SIZE", "TITLE"], rows,
                 right=(1, 4))


def cmd_buy(agent: Agent, args: argparse.Namespace) -> int:
    existing = agent.licences.for_work(args.work)
    if existing is not None and not args.again:
        _print(args, f"You already hold licence {existing.licence_id} for this work "
                     "(use --again to buy another).", {"licence_id": existing.licence_id})
        return 0
    from agent.workflow import buy, held_on_platform, reissued_here  # only when buying

    if not args.again:
        # Bought on the web for this device, or on another of the member's devices: one
        # library on every device, so this device gets its licence without paying again.
        agent.require_login()
        held = held_on_platform(agent, args.work) or reissued_here(agent, args.work)
        if held is not None:
            _print(args, f"You already own this work: licence {held.licence_id} is for this "
                         "device, and nothing was paid (use --again to buy another).\n"
                         f"Download it with: get {held.work_id}",
                   {"licence_id": held.licence_id, "purchase_id": None})
            return 0
    licence = buy(agent, args.work)
    _print(args, f"Bought “{licence.title}”: licence {licence.licence_id}.\n"
                 f"Download it with: get {licence.work_id}",
           {"licence_id": licence.licence_id, "purchase_id": licence.purchase_id})
    return 0


# A top-up in one of these states is asked for but not yet in the wallet's balance.
PENDING_TOPUP_STATES = ("pending", "processing")
ACCOUNT_NAMES = {"wallet": "wallet", "earnings": "earnings", "seeding": "seeding credit",
                 "compute": "compute credit", "payout_pending": "payouts on the way"}


def cmd_wallet(agent: Agent, args: argparse.Namespace) -> int:
    """Balances as posted, and top-ups still waiting for the payment provider beside
    them, never inside them.

    The balance is read before the top-ups: a top-up's state and the wallet's credit
    change in one transaction and never go back, so a top-up still pending after the
    balance was read is not in it. (The other order could count one twice.)"""
    request = _topup_request(args.topup) if args.topup else None
    agent.require_login()
    created = None
    if request is not None:
        created = agent.platform.topup(amount_minor=request[0], currency=request[1])
    balances = list(agent.platform.wallet()["balances"])
    topups = list(agent.platform.topups())
    pending = pending_topups(topups)
    data: dict[str, Any] = {"balances": balances, "pending_topups": pending}
    lines: list[str] = []
    if created is not None:
        # The state the request answered with may be stale by now: read it again.
        topup = next((t for t in topups if t["id"] == created["id"]), created)
        data["topup"] = topup
        lines.append(topup_text(topup))
    lines += wallet_lines(balances, pending)
    _print(args, "\n".join(lines), data)
    return 1 if created is not None and data["topup"]["state"] == "failed" else 0


def _topup_request(topup: Sequence[str]) -> tuple[int, str]:
    amount, currency = topup
    try:
        amount_minor = int(amount)
    except ValueError:
        raise AgentError("Top up a whole number of minor units, e.g. `--topup 2500 EUR` "
                         "for €25.00.") from None
    if amount_minor <= 0:
        raise AgentError("Top up an amount greater than zero.")
    return amount_minor, currency.upper()


def pending_topups(topups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-ups not yet credited, totalled per currency."""
    totals: dict[str, list[int]] = {}
    for topup in topups:
        if topup["state"] in PENDING_TOPUP_STATES:
            total = totals.setdefault(str(topup["currency"]), [0, 0])
            total[0] += int(topup["amount_minor"])
            total[1] += 1
    return [{"currency": code, "amount_minor": amount, "count": count,
             "display": format_minor(amount, code)}
            for code, (amount, count) in sorted(totals.items())]


def topup_text(topup: dict[str, Any]) -> str:
    amount = format_minor(int(topup["amount_minor"]), str(topup["currency"]))
    if topup["state"] == "succeeded":
        return f"Top-up of {amount} credited."
    if topup["state"] == "failed":
        reason = str(topup.get("failure_reason") or "no reason given").rstrip(".")
        return f"Top-up of {amount} failed: {reason}."
    return (f"Top-up of {amount} requested ({topup['state']}): it is credited when the "
            "payment provider confirms, and is not in the balance until then.")


def wallet_lines(balances: list[dict[str, Any]], pending: list[dict[str, Any]]) -> list[str]:
    """A table of balances; pending top-ups in a column of their own, on the wallet row
    of their currency (a wallet with none posted yet shows a zero balance)."""
    waiting = {p["currency"]: p for p in pending}
    rows = [(str(b["kind"]), str(b["currency"]), int(b["balance_minor"])) for b in balances]
    have = {(kind, code) for kind, code, _ in rows}
    rows += [("wallet", code, 0) for code in waiting if ("wallet", code) not in have]
    if not rows:
        return ["Nothing yet: `wallet --topup 2500 EUR`."]
    order = list(ACCOUNT_NAMES)
    rows.sort(key=lambda r: (order.index(r[0]) if r[0] in order else len(order), r[0], r[1]))
    cells = []
    for kind, code, minor in rows:
        row = [ACCOUNT_NAMES.get(kind, kind.replace("_", " ")), code, format_minor(minor, code)]
        if waiting:
            row.append(waiting[code]["display"] if kind == "wallet" and code in waiting else "")
        cells.append(row)
    headers = ["ACCOUNT", "CURRENCY", "BALANCE"] + (["PENDING TOP-UPS"] if waiting else [])
    lines = table(headers, cells, right=(2, 3))
    if waiting:
        lines.append("Pending top-ups are not in the balance: they are credited when the "
                     "payment provider confirms.")
    return lines


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
    from agent.outbox import OrderOutbox

    now = time.time()
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
    from agent.commands_follow import notification_status  # (part: community)

    notes, note_lines = notification_status(agent) if status["platform_reachable"] else ({}, [])
    titles = _titles(agent)
    uploads: list[Upload] = []
    if agent.home.outbox_path.exists():
        outbox = OrderOutbox(agent.home.outbox_path)
        try:
            status["orders_waiting_for_metering"] = outbox.count_pending()
            uploads = recent_uploads(outbox, titles, since=now - RECENT_UPLOAD_DAYS * 86400,
                                     limit=RECENT_UPLOAD_WORKS)
        finally:
            outbox.close()
    status["revocation_list_version"] = agent.trust.revocations_version
    evidence = agent.trust.equivocation()
    if evidence is not None:
        status["revocation_list_equivocation"] = (
            f"two different lists signed as version {evidence.get('version')}; the first is "
            f"kept; {'reported to' if evidence.get('reported') else 'not yet reported to'} "
            "the platform")
    lines = [f"{k.replace('_', ' ')}: {v}" for k, v in status.items()]
    held = _holdings(agent, titles)
    lines += holdings_lines(held) + uploads_lines(uploads, now=now) + note_lines
    status.update(notes)
    status["holdings"] = [h.as_json() for h in held]
    status["recent_uploads"] = [u.as_json() for u in uploads]
    _print(args, "\n".join(lines), status)
    return 0


#: ``status`` lists what was served over this many days, the works most recently served
RECENT_UPLOAD_DAYS = 7
RECENT_UPLOAD_WORKS = 10


def _titles(agent: Agent) -> dict[str, str]:
    """Work titles the agent knows offline: its licences', and the seed agent's imports'."""
    titles = WorkTitles(agent.home.titles_path).all()
    titles.update({lic.work_id: lic.title for lic in agent.licences.all() if lic.title})
    return titles


def _holdings(agent: Agent, titles: dict[str, str]) -> list[Holding]:
    from agent.store import PieceStore

    store = PieceStore(agent.home.store_dir)
    try:
        return holdings(store, titles)
    finally:
        store.close(flush=False)


def holdings_lines(held: list[Holding]) -> list[str]:
    if not held:
        return ["Holdings: none yet (`get` a work, then `serve` shares its pieces)."]
    rows = [[h.work_id, h.title or "-", f"{h.pieces_held}/{h.pieces}", size_text(h.bytes_held)]
            for h in held]
    return ["Holdings:", *table(["WORK", "TITLE", "PIECES", "BYTES"], rows, right=(2, 3),
                                indent="  ")]


def uploads_lines(uploads: list[Upload], *, now: float) -> list[str]:
    heading = f"Uploads in the last {days_text(RECENT_UPLOAD_DAYS)}"
    if not uploads:
        return [f"{heading}: none."]
    rows = [[u.work_id, u.title or "-", size_text(u.byte_count), f"{u.pieces:,}",
             str(u.peers), ago_text(now - u.last_at)] for u in uploads]
    return [f"{heading}:", *table(["WORK", "TITLE", "SERVED", "PIECES", "PEERS", "LAST"], rows,
                                  right=(2, 3, 4), indent="  ")]


def cmd_contribute(agent: Agent, args: argparse.Namespace) -> int:
    """Run compute units for others within the declared limits, until stopped (Ctrl-C),
    idle (``--until-idle``) or done (``--max-units``); print what happened and the
    compute credit the wallet holds."""
    import logging
    import signal

    from agent.contribute.limits import DeclaredLimits
    from agent.contribute.loop import ContributeLoop, Options, Tally
    from agent.display import contribute_line

    agent.require_login()
    limits = DeclaredLimits(cores=args.cores, memory_mib=args.memory_mib,
                            hours_per_day=args.hours_per_day, only_when_idle=args.only_when_idle)
    options = Options(limits=limits, batch=args.batch or limits.cores,
                      max_units=args.max_units, until_idle=args.until_idle)
    interactive = not args.json and sys.stdout.isatty() and sys.stdin.isatty()
    logging.basicConfig(level=logging.INFO if not args.json else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    live = None
    if interactive:
        from agent.commands_transfer import LiveLine

        live = LiveLine(sys.stdout)

    def report(tally: Tally) -> None:
        if live is not None:
            live.show(contribute_line(
                units_run=tally.units_run, accepted=tally.accepted, rejected=tally.rejected,
                duplicate=tally.duplicate, running=tally.running,
                used_today_seconds=tally.used_today, hours_per_day=limits.hours_per_day,
                pause=tally.pause.detail if tally.pause else ""))

    loop = ContributeLoop(platform=agent.platform, device=agent.device, home=agent.home,
                          options=options, report=report)

    # Ctrl-C (or a service manager's SIGTERM) asks the loop to stop: it checks at least
    # once a second and abandons the units in flight on its way out. Raising
    # KeyboardInterrupt wherever the main thread happened to be could leave the HTTP
    # client's pool with a lock held, and the summary's last request waiting on it for
    # ever. A second signal stops at once.
    asked: list[bool] = []

    def interrupt(_signum: int, _frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        loop.stop("interrupted")

    previous = {number: signal.signal(number, interrupt)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        tally = loop.run()
    except KeyboardInterrupt:
        loop.stop("interrupted")  # run() has abandoned the units in flight on its way out
        tally = loop.tally
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if live is not None:
            live.close()
    summary = tally.as_json()
    summary["compute_credit"] = _compute_credit(agent)
    lines = [f"Stopped ({tally.stopped_because}): ran {tally.units_run:,} unit(s); results "
             f"accepted {tally.accepted:,}, rejected {tally.rejected:,}"
             + (f", duplicate {tally.duplicate:,}" if tally.duplicate else "") + "."]
    if tally.reasons:
        lines.append("Rejected: " + ", ".join(f"{reason} x{count}"
                                                for reason, count in sorted(tally.reasons.items())))
    credit = summary["compute_credit"]
    lines.append("Compute credit: " + (", ".join(c["display"] for c in credit) if credit
                                       else "none yet" if credit is not None
                                       else "unknown (the platform did not answer)")
                 + " (paid as units are validated by a second device).")
    _print(args, "\n".join(lines), summary)
    if loop.error is not None and tally.stopped_because not in ("idle", "max-units"):
        print(f"error: {loop.error}", file=sys.stderr)
        return 1
    return 0


def _compute_credit(agent: Agent) -> list[dict[str, Any]] | None:
    """The wallet's compute credit balances, or None if the platform cannot say now."""
    try:
        balances = agent.platform.wallet()["balances"]
    except (PlatformError, PlatformUnreachableError):
        return None
    return [{"currency": b["currency"], "balance_minor": int(b["balance_minor"]),
             "display": format_minor(int(b["balance_minor"]), str(b["currency"]))}
            for b in balances if b["kind"] == "compute"]


# --- parser --------------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after its name.

    The main parser holds the real defaults; each command's parser gets the same options
    with ``SUPPRESS`` as the default (``suppress``), so that given after the command they
    set the value, and left out they do not overwrite one given before it."""
    parser.add_argument("--data-dir", type=Path,
                        default=argparse.SUPPRESS if suppress else None,
                        help=f"the agent's folder (default {default_data_dir()})")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="print machine-readable JSON")


def program_name() -> str:
    """How the user started the agent: the installed command, or the module."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "peermark-agent" if name.startswith("peermark-agent") else "python -m agent"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Peermark's desktop agent: search, buy, download from peers, share.",
        epilog="--data-dir and --json go before or after the command.",
    )
    _global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", parents=[common], help="make this device's keys and register them")
    p.add_argument("--platform", help="the platform's URL (default http://127.0.0.1:8000)")
    p.add_argument("--name", help="a name for this device")
    p.add_argument("--port", type=_port, help="the port `serve` listens on (default 7070)")
    p.add_argument("--force", action="store_true", help="replace existing device keys")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("login", parents=[common],
                       help="log in to the platform and register this device")
    p.add_argument("--username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--token-file", type=Path, default=None,
                   help="use the API token in this file instead of a password (a seed agent's)")
    p.add_argument("--platform", help="the platform's URL, if not the one `init` set")
    p.set_defaults(handler=cmd_login)

    p = sub.add_parser("search", parents=[common],
                       help="search the catalogue: prices and licence terms")
    p.add_argument("query", nargs="*", help="words to look for in titles and descriptions")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("buy", parents=[common], help="buy a work's licence for this device")
    p.add_argument("work", help="the work's id (from `search`)")
    p.add_argument("--again", action="store_true",
                   help="buy even if you hold a licence (on this device or another)")
    p.set_defaults(handler=cmd_buy)

    p = sub.add_parser("get", parents=[common],
                       help="buy if needed, then download, verify, decrypt and mark")
    p.add_argument("work", help="the work's id (from `search`)")
    p.add_argument("--out", type=Path, help="where to write the file (default: the library)")
    p.add_argument("--limit-rate", type=_rate, default=None,
                   help="download cap, e.g. 500K or 20M bytes per second")
    p.add_argument("--no-buy", action="store_true", help="fail instead of buying")
    p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_get"))

    p = sub.add_parser("view", parents=[common],
                       help="open a work in a viewer without keeping a copy "
                            "(for licences that permit viewing)")
    p.add_argument("work", help="the work's id")
    p.add_argument("--with", dest="viewer", metavar="COMMAND",
                   help="the viewer to run on the file (default: $PEERMARK_VIEWER, xdg-open)")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="delete the copy as soon as the viewer exits (a viewer that stays "
                        "in the foreground), without asking")
    p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_view"))

    # `share` is the same command under its older name, kept for scripts that use it.
    p = sub.add_parser("serve", aliases=["share"], parents=[common],
                       help="share what you hold with other peers and earn seeding credit "
                            "(runs until stopped)",
                       description="Share the pieces you hold with other peers and earn "
                                   "seeding credit, until stopped (Ctrl-C). A status line "
                                   "shows the peers served in the last minute, the upload "
                                   "rate, what was served today and your seeding credit. "
                                   "`share` is this command's older name.")
    p.add_argument("--host", help="address to listen on (default from config)")
    p.add_argument("--port", type=_port, help="port to listen on (default from config)")
    p.add_argument("--limit-rate", type=_rate, default=None, help="upload cap")
    p.add_argument("--import-from", type=Path, default=None,
                   help="a folder of ciphertext files to seed every work from "
                        "(the platform's seed agent)")
    p.add_argument("--peer", action="append", default=[],
                   help="a known peer URL for the Gnutella fallback (repeatable)")
    p.add_argument("--status-every", type=_seconds, default=60.0, metavar="SECONDS",
                   help="when not run at a terminal, log the status line this often "
                        "(default 60; 0: never); at a terminal it is redrawn every second")
    p.set_defaults(handler=_lazy("agent.commands_transfer", "cmd_serve"))

    p = sub.add_parser("status", parents=[common],
                       help="what this agent is, the pieces it holds and what it uploaded lately")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("library", parents=[common], help="your licences and the pieces you hold")
    p.set_defaults(handler=cmd_library)
    from agent.commands_library import add_options as add_library_options

    add_library_options(p)  # --devices, --add, --move-here (agent/commands_library.py)

    p = sub.add_parser("wallet", parents=[common], help="your balances, or top up")
    p.add_argument("--topup", nargs=2, metavar=("AMOUNT_MINOR", "CURRENCY"),
                   help="ask for a top-up, e.g. --topup 2500 EUR")
    p.set_defaults(handler=cmd_wallet)

    from agent.commands_messages import add_parser as add_messages_parser

    add_messages_parser(sub, common)  # messages: list, read, send (agent/commands_messages.py)
    from agent.commands_follow import add_parser as add_follow_parser

    add_follow_parser(sub, common)  # follow NAME, --remove, --list (agent/commands_follow.py)

    from agent.contribute import limits as compute_limits

    p = sub.add_parser(
        "contribute", parents=[common],
        help="run compute units for others and earn compute credit (runs until stopped)",
        description="Opt this device in to the compute market and run work units for "
                    "others in a sandbox, within the limits below, until stopped (Ctrl-C: "
                    "units in flight are abandoned, and the platform gives them to another "
                    "device after their deadline). Each result is signed with the device "
                    "key; it is paid once another member's device agrees with it.")
    p.add_argument("--cores", type=compute_limits.cores_arg,
                   default=compute_limits.default_cores(),
                   help="units to run at once (default half the CPUs: "
                        f"{compute_limits.default_cores()})")
    p.add_argument("--memory-mib", type=compute_limits.memory_mib_arg,
                   default=compute_limits.DEFAULT_MEMORY_MIB, metavar="MIB",
                   help="the most memory one unit may use (default "
                        f"{compute_limits.DEFAULT_MEMORY_MIB}); only jobs within it are taken")
    p.add_argument("--hours-per-day", type=compute_limits.hours_arg, default=24, metavar="H",
                   help="hours a day units may run (default 24); counted in the agent's "
                        "folder, the rest of the day is then paused")
    p.add_argument("--only-when-idle", action="store_true",
                   help="take units only while others' load is low and nobody typed at a "
                        "terminal in the last 5 minutes (graphical input is not detected)")
    p.add_argument("--batch", type=compute_limits.batch_arg, default=None, metavar="N",
                   help="units to ask for at once (default: --cores)")
    p.add_argument("--max-units", type=compute_limits.count_arg, default=None, metavar="N",
                   help="stop after running N units")
    p.add_argument("--until-idle", action="store_true",
                   help="stop the first time the platform has no work (for scripts and tests)")
    p.set_defaults(handler=cmd_contribute)
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


def _seconds(text: str) -> float:
    """An interval of 1 s to a day, or 0 for never: shorter would be a busy loop."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if seconds != 0 and not 1 <= seconds <= 86400:  # also refuses nan
        raise argparse.ArgumentTypeError("give 1 to 86400 seconds, or 0 for never")
    return seconds


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


def data_dir_problem(root: Path, *, given: bool) -> str | None:
    """Why ``root`` cannot be the agent's folder (a file is in the way), or None."""
    name = f"--data-dir {root}" if given else f"the agent's folder {root}"
    for path in (root, *root.parents):
        if path.exists():
            if path.is_dir():
                return None
            if path == root:
                return f"{name} is a file, not a folder"
            return f"{name} cannot be made: {path} is a file, not a folder"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    root = args.data_dir or default_data_dir()
    problem = data_dir_problem(root, given=args.data_dir is not None)
    if problem is not None:
        parser.error(problem)  # exits 2, like every other usage error
    try:
        agent = Agent(AgentHome(root))
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
