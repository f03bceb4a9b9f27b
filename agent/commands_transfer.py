"""``get``, ``view`` and ``serve``: the commands that move pieces (they load aiohttp)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import mimetypes
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from agent.cli import _print, buy
from agent.context import Agent, AgentError
from agent.daemon import Daemon, ServeOptions
from agent.deliver import Delivery, DeliveryError, deliver, receipt_for
from agent.download import Downloader, DownloadError, Progress, Source
from agent.gnutella import GnutellaNode, known_neighbours, sources_from_hits
from agent.library import OwnedLicence
from agent.platform import PlatformError, PlatformUnreachableError
from agent.receipts import add_served, queue_receipt, receipt_sent, send_receipt
from agent.store import PieceStore, StoreError, WorkStore
from licensing.core import (
    DocumentKind,
    ExpiredError,
    Licence,
    LicensingError,
    Manifest,
    Use,
    read_licence,
    read_manifest,
)
from licensing.core.bitfield import bitfield_decode


def _manifest_for(agent: Agent, owned: OwnedLicence, root: bytes) -> tuple[Manifest, str]:
    """The work's signed manifest: the one bought with the licence, or a fresh one.

    Offline with an expired manifest token, the manifest is still trusted if its
    signature holds and its Merkle root is the one the (platform-signed, current)
    licence names: the licence vouches for exactly that content.
    """
    ring = agent.trust.keyring()
    now = int(time.time())
    token = owned.manifest
    try:
        return read_manifest(token, keyring=ring, now=now), token
    except ExpiredError:
        pass
    try:
        token = str(agent.platform.manifest(owned.work_id)["token"])
        return read_manifest(token, keyring=ring, now=now), token
    except PlatformUnreachableError:
        _kid, claims = ring.verify(owned.manifest, DocumentKind.MANIFEST)
        manifest = Manifest.from_claims(claims)
        if manifest.root != root:
            raise AgentError("The stored manifest does not match the licence.") from None
        return manifest, owned.manifest


def _platform_sources(agent: Agent, work_id: str, piece_count: int) -> tuple[list[Source],
                                                                              list[str]]:
    body = agent.platform.sources(work_id)
    sources = []
    for item in body["results"]:
        try:
            bits = bitfield_decode(item["bitfield"], piece_count)
        except ValueError:
            continue
        sources.append(Source(peer_id=item["peer_id"], url=item["url"], bitfield=bits))
    return sources, list(body["web_seeds"])


async def _gnutella_sources(agent: Agent, work_id: str, piece_count: int) -> list[Source]:
    """Without the platform: ask known peers, Gnutella-style (Query flooding, TTL 4)."""
    node = GnutellaNode(peer_id=agent.device.device_id, url="", holdings=lambda _w: None)
    try:
        for neighbour in await known_neighbours(agent.config.known_peers):
            node.add_neighbour(neighbour)
        if not node.neighbours:
            raise AgentError("The platform is unreachable and no known peer answers "
                             "(add some with `serve --peer URL` or the config's known_peers).")
        return sources_from_hits(await node.query(work_id), piece_count)
    finally:
        await node.close()


def _file_name(owned: OwnedLicence) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", owned.title).strip("-")[:60] or "work"
    extension = mimetypes.guess_extension(owned.content_type) or ""
    return f"{owned.work_id}-{stem}{extension}"


def _destination(agent: Agent, args: argparse.Namespace, owned: OwnedLicence) -> Path:
    if args.out is not None:
        return Path(args.out)
    return agent.home.library_dir / _file_name(owned)


def _usable_licence(agent: Agent, owned: OwnedLicence) -> Licence:
    """The held licence, checked: platform-signed, this device's, current, not revoked."""
    try:
        licence = read_licence(owned.token, keyring=agent.trust.keyring(), now=int(time.time()),
                               device_id=agent.device.device_id)
        agent.trust.revocations().check_licence(licence)
    except LicensingError as exc:
        raise AgentError(f"Your licence cannot be used: {exc}") from exc
    return licence


def _uses(licence: Licence) -> str:
    return ", ".join(sorted(u.value for u in licence.uses)) or "nothing"


def _deliver(agent: Agent, owned: OwnedLicence, licence: Licence, work: WorkStore,
             destination: Path) -> Delivery:
    try:
        return deliver(store=work, manifest=work.manifest, licence=licence,
                       keys=licence.unwrap_keys(agent.device), destination=destination,
                       content_type=owned.content_type)
    except DeliveryError as exc:
        raise AgentError(f"Could not write the copy: {exc}") from exc


def _receipt(agent: Agent, owned: OwnedLicence, licence: Licence, delivery: Delivery,
             *, online: bool) -> tuple[str, dict[str, int]]:
    """Sign the receipt for a delivered copy, queue it and send it if online.

    Once per licence: the platform takes one receipt per licence, so a second `get` or
    `view` of a work whose receipt was accepted sends nothing more.
    """
    served = add_served(agent, owned.licence_id, {})
    if receipt_sent(agent, owned.licence_id):
        return "sent earlier", served
    token = receipt_for(delivery, device=agent.device, licence=licence, served_bytes=served,
                        now=int(time.time()))
    queue_receipt(agent, owned.licence_id, token)
    return (send_receipt(agent, owned.licence_id) if online else "pending"), served


def cmd_get(agent: Agent, args: argparse.Namespace) -> int:
    agent.device  # noqa: B018 (no keys yet: "run init first")
    agent.home.ensure()
    online = bool(agent.config.token) and agent.refresh_trust()
    owned = agent.licences.for_work(args.work)
    if owned is None:
        if args.no_buy:
            raise AgentError("You hold no licence for this work (and --no-buy was given).")
        agent.require_login()
        if not online:
            raise AgentError("You hold no licence for this work and the platform is "
                             "unreachable, so it cannot be bought now.")
        owned = buy(agent, args.work)
        print(f"Bought “{owned.title}” (licence {owned.licence_id}).", file=sys.stderr)
    licence = _usable_licence(agent, owned)
    # Keeping a plaintext copy is the licence's "download" term. Without it the pieces
    # stay encrypted in the store, and `view` opens a marked copy that it deletes after.
    keep = licence.permits(Use.DOWNLOAD.value)
    if not keep and args.out is not None:
        raise AgentError(f"Your licence permits {_uses(licence)}, not keeping a copy, so "
                         "there is nothing to write to --out.")
    manifest, manifest_token = _manifest_for(agent, owned, licence.manifest_root)
    store = PieceStore(agent.home.store_dir)
    run: dict[str, object] = {"pieces_fetched": 0, "dropped": []}
    try:
        work = store.add_verified(manifest, manifest_token)
        run["held_before"] = work.held_count
        if not work.complete:
            run.update(_download(agent, args, owned, work, licence=licence, online=online))
        if keep:
            delivery = _deliver(agent, owned, licence, work, _destination(agent, args, owned))
    finally:
        store.close()
    if not keep:
        _print(args, f"Downloaded and verified all {manifest.piece_count} pieces; they stay "
               f"encrypted. Your licence permits {_uses(licence)}, not keeping a copy"
               + (f": open it with `view {owned.work_id}`." if licence.permits(Use.VIEW.value)
                  else "."),
               {"path": None, "kept": False, "uses": sorted(u.value for u in licence.uses),
                "licence_id": owned.licence_id, "pieces": manifest.piece_count, **run})
        return 0
    outcome, served = _receipt(agent, owned, licence, delivery, online=online)
    mark = "watermarked for your licence" if delivery.marked else f"not marked ({delivery.detail})"
    _print(args, "\n".join([
        f"Wrote {delivery.path} ({delivery.size:,} bytes, {mark}).",
        f"SHA-256 {delivery.sha256_hex}",
        f"Receipt: {outcome}.",
    ]), {"path": str(delivery.path), "kept": True, "sha256": delivery.sha256_hex,
         "marked": delivery.marked, "receipt": outcome, "licence_id": owned.licence_id,
         "served": served, "pieces": manifest.piece_count, **run})
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
    licence = _usable_licence(agent, owned)
    if not licence.permits(Use.VIEW.value):
        raise AgentError(f"Your licence does not permit viewing (it permits {_uses(licence)}).")
    viewer = _viewer(args.viewer)
    manifest, manifest_token = _manifest_for(agent, owned, licence.manifest_root)
    with tempfile.TemporaryDirectory(prefix="peermark-view-") as folder:  # owner-only
        store = PieceStore(agent.home.store_dir)
        try:
            work = store.add_verified(manifest, manifest_token)
            if not work.complete:
                raise AgentError(f"{work.held_count} of {work.piece_count} pieces are here: "
                                 f"run `get {owned.work_id}` first.")
            delivery = _deliver(agent, owned, licence, work, Path(folder) / _file_name(owned))
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
        outcome, _served = _receipt(agent, owned, licence, delivery, online=online)
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


def _download(agent: Agent, args: argparse.Namespace, owned: OwnedLicence, work: WorkStore,
              *, licence: Licence, online: bool) -> dict[str, object]:
    count = work.manifest.piece_count
    web_seeds: list[str] = []
    if online:
        try:
            sources, web_seeds = _platform_sources(agent, owned.work_id, count)
        except PlatformUnreachableError:
            online = False
    if not online:
        sources = asyncio.run(_gnutella_sources(agent, owned.work_id, count))
    if not sources and not web_seeds:
        raise AgentError("Nobody is sharing this work right now; try again later.")
    total = work.manifest.ciphertext_size
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=owned.title[:30],
               disable=args.json or not sys.stderr.isatty(), leave=False)

    def progress(step: Progress) -> None:
        bar.n = step.bytes_done
        bar.refresh()

    limit = args.limit_rate or agent.config.download_limit_bps or None
    downloader = Downloader(work=work, licence=licence,
                            licence_token=owned.token, device=agent.device, sources=sources,
                            web_seeds=web_seeds, rate_limit_bps=limit, progress=progress)
    try:
        result = asyncio.run(downloader.run())
    except DownloadError as exc:
        add_served(agent, owned.licence_id, dict(exc.result.bytes_by_peer))
        raise AgentError(f"The download stopped: {exc}. Run `get` again to resume.") from exc
    except StoreError as exc:
        raise AgentError(f"Cannot store pieces: {exc}") from exc
    finally:
        bar.close()
    add_served(agent, owned.licence_id, dict(result.bytes_by_peer))
    for dropped in result.dropped:
        print(f"dropped a source: {dropped.source[:16]}… ({dropped.reason})", file=sys.stderr)
    return {"pieces_fetched": len(result.pieces_fetched),
            "dropped": [{"source": d.source, "reason": d.reason} for d in result.dropped],
            "web_seed_bytes": result.web_seed_bytes}


def cmd_serve(agent: Agent, args: argparse.Namespace) -> int:
    agent.require_login()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per platform call
    if args.peer:
        agent.config.known_peers = sorted(set(agent.config.known_peers) | set(args.peer))
        agent.home.save_config(agent.config)
    options = ServeOptions(
        host=args.host or agent.config.listen_host,
        port=args.port if args.port is not None else agent.config.listen_port,
        upload_limit_bps=args.limit_rate or agent.config.upload_limit_bps or None,
        import_from=args.import_from, known_peers=list(agent.config.known_peers),
    )
    try:
        asyncio.run(Daemon(agent, options).run())
    except OSError as exc:
        raise AgentError(f"Cannot listen on {options.host}:{options.port}: {exc}") from exc
    except PlatformError as exc:
        raise AgentError(f"The platform refused this agent: {exc}") from exc
    return 0
