"""``get``, ``view`` and ``serve``: the commands that move pieces (they load aiohttp)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from agent.activity import UploadSnapshot, status_line
from agent.cli import _print
from agent.context import Agent, AgentError
from agent.download import Progress
from agent.library import OwnedLicence
from agent.platform import PlatformError
from agent.store import PieceStore
from agent.workflow import (
    GetListener,
    deliver_copy,
    file_name,
    get_work,
    manifest_for,
    receipt,
    usable_licence,
    uses_text,
)
from licensing.core import Use


class _ProgressBar(GetListener):
    """`get`'s terminal view of the workflow: a progress bar, and what was bought."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm[None] | None = None

    def bought(self, owned: OwnedLicence) -> None:
        print(f"Bought “{owned.title}” (licence {owned.licence_id}).", file=sys.stderr)

    def download_started(self, owned: OwnedLicence, total_bytes: int) -> None:
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=owned.title[:30], disable=self.quiet or not sys.stderr.isatty(),
                        leave=False)

    def download_progress(self, step: Progress) -> None:
        if self.bar is not None:
            self.bar.n = step.bytes_done
            self.bar.refresh()

    def download_finished(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def marking_progress(self, owned: OwnedLicence, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, unit="frame", desc=f"marking {owned.title[:22]}",
                            disable=self.quiet or not sys.stderr.isatty(), leave=False)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def marking_finished(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_get(agent: Agent, args: argparse.Namespace) -> int:
    done = get_work(agent, args.work, destination=args.out, allow_buy=not args.no_buy,
                    rate_limit_bps=args.limit_rate or agent.config.download_limit_bps or None,
                    listener=_ProgressBar(quiet=args.json))
    for dropped in done.download.dropped:
        print(f"dropped a source: {dropped.source[:16]}… ({dropped.reason})", file=sys.stderr)
    run = {"held_before": done.held_before, "pieces_fetched": done.download.pieces_fetched,
           "dropped": [{"source": d.source, "reason": d.reason} for d in done.download.dropped],
           "refused_pieces": [{"source": b.source, "piece": b.piece, "reason": b.reason}
                              for b in done.download.banned],
           "web_seed_bytes": done.download.web_seed_bytes}
    licence, owned, pieces = done.licence, done.owned, done.manifest.piece_count
    delivery = done.delivery
    if delivery is None:
        _print(args, f"Downloaded and verified all {pieces} pieces; they stay "
               f"encrypted. Your licence permits {uses_text(licence)}, not keeping a copy"
               + (f": open it with `view {owned.work_id}`." if licence.permits(Use.VIEW.value)
                  else "."),
               {"path": None, "kept": False, "uses": sorted(u.value for u in licence.uses),
                "licence_id": owned.licence_id, "pieces": pieces, **run})
        return 0
    mark = "watermarked for your licence" if delivery.marked else f"not marked ({delivery.detail})"
    _print(args, "\n".join([
        f"Wrote {delivery.path} ({delivery.size:,} bytes, {mark}).",
        f"SHA-256 {delivery.sha256_hex}",
        f"Receipt: {done.receipt}.",
    ]), {"path": str(delivery.path), "kept": True, "sha256": delivery.sha256_hex,
         "marked": delivery.marked, "receipt": done.receipt, "licence_id": owned.licence_id,
         "served": done.served, "pieces": pieces, **run})
    return 0


def cmd_view(agent: Agent, args: argparse.Namespace) -> int:
    """Open a marked copy in a viewer, from a private temporary folder deleted after.

    For a licence that permits viewing but not keeping a copy (and for any other that
    permits viewing). The copy is the same marked file ``get`` would write, so the
    receipt, sent on the first view, is the same too.
    """
    agent.device  # noqa: B018 (no keys yet: "run init first")
    agent.home.ensure()
    owned = agent.licences.for_work(args.work)
    if owned is None:
        raise AgentError("You hold no licence for this work: `get` it first.")
    online = bool(agent.config.token) and agent.refresh_trust()
    licence = usable_licence(agent, owned)
    if not licence.permits(Use.VIEW.value):
        raise AgentError(f"Your licence does not permit viewing (it permits {uses_text(licence)}).")
    viewer = _viewer(args.viewer)
    manifest, manifest_token = manifest_for(agent, owned, licence.manifest_root)
    with tempfile.TemporaryDirectory(prefix="peermark-view-") as folder:  # owner-only
        store = PieceStore(agent.home.store_dir)
        try:
            work = store.add_verified(manifest, manifest_token)
            if not work.complete:
                raise AgentError(f"{work.held_count} of {work.piece_count} pieces are here: "
                                 f"run `get {owned.work_id}` first.")
            delivery = deliver_copy(agent, owned, licence, work, Path(folder) / file_name(owned))
        finally:
            store.close()
        opener = viewer[0] in _OPENERS
        try:
            # The user's own viewer command, on their own machine.
            shown = subprocess.run([*viewer, str(delivery.path)], check=False)  # noqa: S603
        except OSError as exc:  # never shown: no receipt
            raise AgentError(f"Could not start the viewer {viewer[0]!r}: {exc}") from exc
        if shown.returncode != 0:
            raise AgentError(f"The viewer {viewer[0]!r} failed (exit code "
                             f"{shown.returncode}); the copy was deleted.")
        outcome, _served = receipt(agent, owned, licence, delivery, online=online)
        if args.wait and sys.stdin.isatty():
            print("Press Enter when you have finished viewing; the copy is then deleted.",
                  file=sys.stderr, flush=True)
            sys.stdin.readline()
        elif args.wait and opener:
            # A desktop opener returns at once, before its viewer has read the file.
            print(f"Keeping the copy {OPENER_GRACE_SECONDS} s for the viewer to open it.",
                  file=sys.stderr, flush=True)
            time.sleep(OPENER_GRACE_SECONDS)
    _print(args, f"Viewed “{owned.title}” with {viewer[0]}; the copy was deleted. "
           f"Receipt: {outcome}.",
           {"viewer": viewer[0], "kept": False, "sha256": delivery.sha256_hex,
            "marked": delivery.marked, "receipt": outcome, "licence_id": owned.licence_id})
    return 0


# Desktop openers hand the file to the user's viewer and exit at once.
_OPENERS = ("xdg-open", "open")
OPENER_GRACE_SECONDS = 20


def _viewer(chosen: str | None) -> list[str]:
    """The viewer command: ``--with``, else ``PEERMARK_VIEWER``, else the desktop's opener."""
    text = chosen or os.environ.get("PEERMARK_VIEWER", "")
    if text.strip():
        try:
            command = shlex.split(text)
        except ValueError as exc:
            raise AgentError(f"Cannot read the viewer command {text!r}: {exc}") from exc
        return command
    for opener in _OPENERS:
        if shutil.which(opener):
            return [opener]
    raise AgentError("No viewer found: pass --with COMMAND or set PEERMARK_VIEWER.")


def cmd_serve(agent: Agent, args: argparse.Namespace) -> int:
    # Imported here: the daemon's server stack is not part of `get`'s start-up.
    from agent.daemon import Daemon, ServeOptions

    agent.require_login()
    report, every, live = serve_reporter(
        json_lines=args.json, status_every=args.status_every, stdout=sys.stdout,
        interactive=sys.stdin.isatty() and sys.stdout.isatty())
    handler: logging.Handler = (LogAboveLiveLine(live, sys.stderr)
                                if live is not None and sys.stderr.isatty()
                                else logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per platform call
    if args.peer:
        agent.config.known_peers = sorted(set(agent.config.known_peers) | set(args.peer))
        agent.home.save_config(agent.config)
    options = ServeOptions(
        host=args.host or agent.config.listen_host,
        port=args.port if args.port is not None else agent.config.listen_port,
        upload_limit_bps=args.limit_rate or agent.config.upload_limit_bps or None,
        import_from=args.import_from, known_peers=list(agent.config.known_peers),
        report_seconds=every,
    )
    try:
        asyncio.run(Daemon(agent, options, report=report).run())
    except OSError as exc:
        raise AgentError(f"Cannot listen on {options.host}:{options.port}: {exc}") from exc
    except PlatformError as exc:
        raise AgentError(f"The platform refused this agent: {exc}") from exc
    finally:
        if live is not None:
            live.close()
    return 0


#: how often the status line is redrawn on a terminal
LIVE_SECONDS = 1.0
STATUS_LOG = logging.getLogger("agent.status")


def serve_reporter(*, json_lines: bool, status_every: float, stdout: TextIO,
                   interactive: bool
                   ) -> tuple[Callable[[UploadSnapshot], None], float, LiveLine | None]:
    """How ``serve`` shows its figures, and how often: redrawn in place every second when
    ``interactive`` (a person at a terminal); otherwise (a log file, a service manager)
    one log line every ``status_every`` seconds, or with ``--json`` one JSON object per
    line on stdout.

    Interactive needs stdin as well as stdout on a terminal: a script's background job
    (``serve &``, as scripts/run starts the seed agent) writes to the terminal too, but
    its stdin is /dev/null, and a line redrawn every second would garble the output of
    everything else the script runs."""
    if json_lines:
        def print_json(snapshot: UploadSnapshot) -> None:
            print(json.dumps(snapshot.as_json()), file=stdout, flush=True)

        return print_json, status_every, None
    if interactive:
        live = LiveLine(stdout)
        return lambda snapshot: live.show(status_line(snapshot)), LIVE_SECONDS, live
    return lambda snapshot: STATUS_LOG.info("%s", status_line(snapshot)), status_every, None


class LiveLine:
    """One line of a terminal, redrawn in place: carriage return, erase to the end of the
    line, the text cut to the terminal's width (a line that wrapped could not be redrawn)."""

    ERASE = "\r\x1b[K"

    def __init__(self, stream: TextIO,
                 columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns
                 ) -> None:
        self._stream = stream
        self._columns = columns
        self._text = ""

    def show(self, text: str) -> None:
        self._text = text
        self.redraw()

    def redraw(self) -> None:
        if self._text:
            self._stream.write(self.ERASE + self._text[: max(self._columns() - 1, 1)])
            self._stream.flush()

    def clear(self) -> None:
        if self._text:
            self._stream.write(self.ERASE)
            self._stream.flush()

    def close(self) -> None:
        """Leave the last figures on screen and move to a new line."""
        if self._text:
            self._stream.write("\n")
            self._stream.flush()
            self._text = ""


class LogAboveLiveLine(logging.StreamHandler[TextIO]):
    """Log lines on the terminal that shows the live line: erase the line, write the
    record, draw the line again below it, so the two never run into each other."""

    def __init__(self, live: LiveLine, stream: TextIO) -> None:
        super().__init__(stream)
        self.live = live

    def emit(self, record: logging.LogRecord) -> None:
        self.live.clear()
        super().emit(record)
        self.live.redraw()
