"""The get workflow: buy, manifest, download, deliver, receipt.

One module the CLI's ``get`` and ``view`` call, and any other front end (the daemon, a
GUI) can call the same way: it decides and does, and reports through a `GetListener`;
it never prints. The CLI only parses arguments and prints what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import write_private
from agent.context import Agent, AgentError
from agent.deliver import (
    Delivery,
    DeliveryError,
    StreamedCopy,
    deliver,
    receipt_for,
    streamed_copy,
)
from agent.download import Downloader, DownloadError, DownloadResult, Progress, Source
from agent.index_client import IndexClient
from agent.library import OwnedLicence
from agent.picker import BannedPiece, DroppedSource
from agent.platform import PlatformError, PlatformUnreachableError
from agent.receipts import add_served, queue_receipt, receipt_sent, send_receipt
from agent.store import PieceStore, StoreError, WorkStore
from licensing.core import (
    DeviceKeys,
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
from licensing.core.sealed_tables import table_sha256


class GetListener:
    """What a front end hears while a work is fetched; each method does nothing here."""

    def bought(self, owned: OwnedLicence) -> None:
        """A licence was bought for this device (before any piece is fetched)."""

    def download_started(self, owned: OwnedLicence, total_bytes: int) -> None:
        """Pieces are about to be fetched; `total_bytes` is the whole ciphertext."""

    def download_progress(self, step: Progress) -> None:
        """Another piece is verified and stored."""

    def download_finished(self) -> None:
        """The download ended, in success or not."""

    def marking_progress(self, owned: OwnedLicence, done: int, total: int) -> None:
        """The copy is being marked: `done` of `total` steps (a video's frames); called
        from the marking thread, a few times a second at most."""

    def marking_finished(self) -> None:
        """Marking ended (or the copy needed none), in success or not."""


@dataclass
class DownloadSummary:
    pieces_fetched: int = 0
    dropped: list[DroppedSource] = field(default_factory=list)
    web_seed_bytes: int = 0
    #: pieces a source sent wrong and was not asked for again (the run went on)
    banned: list[BannedPiece] = field(default_factory=list)


@dataclass(frozen=True)
class GetOutcome:
    """What `get_work` did. `delivery` is None when the licence does not permit keeping a
    copy: the pieces are then held, still encrypted, for `view`."""

    owned: OwnedLicence
    licence: Licence
    manifest: Manifest
    held_before: int
    download: DownloadSummary
    delivery: Delivery | None
    receipt: str | None
    served: dict[str, int]


def buy(agent: Agent, work_id: str) -> OwnedLicence:
    """Buy ``work_id`` for this device (retrying a lost purchase with the same key)."""
    agent.require_login()
    work = agent.platform.work(work_id)
    key = agent.licences.purchase_key(work_id)
    body = agent.platform.purchase(work_id=work_id, device_id=agent.device.device_id,
                                   idempotency_key=key)
    licence = OwnedLicence.from_purchase(body, work)
    agent.licences.save(licence)
    agent.licences.purchase_done(work_id)
    return licence


def held_on_platform(agent: Agent, work_id: str) -> OwnedLicence | None:
    """A licence for ``work_id`` that the platform issued to this device and the agent
    does not hold yet (bought on the web), saved to the library; None if there is none.
    Revoked and expired ones are passed over: buying again is then the right answer."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for licence in agent.platform.licences(work_id=work_id):
        if (licence.get("device") != agent.device.device_id or licence.get("revoked_at")
                or str(licence.get("expires_at", ""))[:19] <= now):
            continue
        owned = OwnedLicence.from_platform(licence, agent.platform.work(work_id),
                                           str(agent.platform.manifest(work_id)["token"]))
        agent.licences.save(owned)
        return owned
    return None


def _live(licence: dict[str, Any], now: str) -> bool:
    return not licence.get("revoked_at") and str(licence.get("expires_at", ""))[:19] > now


def reissued_here(agent: Agent, work_id: str) -> OwnedLicence | None:
    """A licence for this device re-issued from one the member holds on another of their
    devices (one library on every device: not a sale, nothing is paid), saved to the
    library; None if they hold no live licence for ``work_id`` anywhere. Over the work's
    device limit the platform refuses, and so does this: buying the work a second time
    is not what a member who owns it means by `get`."""
    here = agent.device.device_id
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    held = [lic for lic in agent.platform.licences(work_id=work_id) if _live(lic, now)]
    if not held:
        return None
    mine = next((lic for lic in held if lic.get("device") == here), None)
    if mine is None:
        try:
            # Re-issuing to a device that already holds one returns that one, so a retry
            # after a lost answer (with a new key) issues nothing twice.
            mine = agent.platform.licence_reissue(
                licence_id=str(held[0]["id"]), device_id=here,
                idempotency_key=f"agent-add-{uuid.uuid4()}")
        except PlatformError as exc:
            if exc.code == "device_limit":
                raise AgentError(
                    f"{exc.message} Free a slot, or move a lost device's licence here "
                    "with `library --move-here LICENCE_ID` (see `library --devices`)."
                ) from exc
            raise
    owned = OwnedLicence.from_platform(mine, agent.platform.work(work_id),
                                       str(agent.platform.manifest(work_id)["token"]))
    agent.licences.save(owned)
    return owned


def file_name(owned: OwnedLicence) -> str:
    """The copy's file name in the library: the work's id, its title, its extension."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", owned.title).strip("-")[:60] or "work"
    extension = mimetypes.guess_extension(owned.content_type) or ""
    return f"{owned.work_id}-{stem}{extension}"


def usable_licence(agent: Agent, owned: OwnedLicence) -> Licence:
    """The held licence, checked: platform-signed, this device's, current, not revoked."""
    try:
        licence = read_licence(owned.token, keyring=agent.trust.keyring(), now=int(time.time()),
                               device_id=agent.device.device_id)
        agent.trust.revocations().check_licence(licence)
    except LicensingError as exc:
        raise AgentError(f"Your licence cannot be used: {exc}") from exc
    return licence


def uses_text(licence: Licence) -> str:
    return ", ".join(sorted(u.value for u in licence.uses)) or "nothing"


def manifest_for(agent: Agent, owned: OwnedLicence, root: bytes) -> tuple[Manifest, str]:
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


def platform_sources(agent: Agent, work_id: str, piece_count: int) -> tuple[list[Source],
                                                                             list[str]]:
    """The peers and web seeds the platform's index names for a work (by the index's
    fast path where the platform offers one: index_client.py)."""
    with IndexClient(agent.platform, device_id=agent.device.device_id,
                     credential_file=agent.home.index_credential_path) as index:
        body = index.sources(work_id)
    sources = []
    for item in body["results"]:
        try:
            bits = bitfield_decode(item["bitfield"], piece_count)
        except ValueError:
            continue
        sources.append(Source(peer_id=item["peer_id"], url=item["url"], bitfield=bits))
    return sources, list(body["web_seeds"])


async def gnutella_sources(agent: Agent, work_id: str, piece_count: int) -> list[Source]:
    """Without the platform: ask known peers, Gnutella-style (Query flooding, TTL 4)."""
    # Imported here: the Gnutella node brings aiohttp's client and server, which the
    # usual path (the platform names the sources) never needs at start-up.
    from agent.gnutella import GnutellaNode, known_neighbours, sources_from_hits

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


def fetch(work: WorkStore, *, licence: Licence, licence_token: str, device: DeviceKeys,
          sources: Sequence[Source], web_seeds: Sequence[str], rate_limit_bps: int | None,
          progress: Callable[[Progress], None] | None = None,
          copy: StreamedCopy | None = None) -> DownloadResult:
    """Run the downloader over known sources: the transfer step of `get`, on its own so
    that the transfer benchmark times exactly what `get` runs. With ``copy``, each piece
    is also decrypted into the copy as soon as it is verified and stored."""
    downloader = Downloader(work=work, licence=licence, licence_token=licence_token,
                            device=device, sources=sources, web_seeds=web_seeds,
                            rate_limit_bps=rate_limit_bps, progress=progress,
                            on_piece=None if copy is None else copy.on_piece)
    return asyncio.run(downloader.run())


def download(agent: Agent, owned: OwnedLicence, work: WorkStore, *, licence: Licence,
             online: bool, rate_limit_bps: int | None, listener: GetListener,
             copy: StreamedCopy | None = None) -> DownloadSummary:
    """Fetch the pieces the store lacks from every source at once; resumable."""
    count = work.manifest.piece_count
    web_seeds: list[str] = []
    if online:
        try:
            sources, web_seeds = platform_sources(agent, owned.work_id, count)
        except PlatformUnreachableError:
            online = False
    if not online:
        sources = asyncio.run(gnutella_sources(agent, owned.work_id, count))
    if not sources and not web_seeds:
        raise AgentError("Nobody is sharing this work right now; try again later.")
    listener.download_started(owned, work.manifest.ciphertext_size)
    try:
        result = fetch(work, licence=licence, licence_token=owned.token, device=agent.device,
                       sources=sources, web_seeds=web_seeds, rate_limit_bps=rate_limit_bps,
                       progress=listener.download_progress, copy=copy)
    except DownloadError as exc:
        # On a full disk this tally cannot be saved either; say why the download
        # stopped all the same (the receipt then claims less than the peers' orders
        # prove, and the platform, which pays on the orders, flags it for review).
        with contextlib.suppress(OSError):
            add_served(agent, owned.licence_id, dict(exc.result.bytes_by_peer))
        raise AgentError(f"The download stopped: {exc}. Run `get` again to resume.") from exc
    except StoreError as exc:
        raise AgentError(f"Cannot store pieces: {exc}") from exc
    finally:
        listener.download_finished()
    add_served(agent, owned.licence_id, dict(result.bytes_by_peer))
    return DownloadSummary(len(result.pieces_fetched), list(result.dropped),
                           result.web_seed_bytes, list(result.banned))


def start_copy(agent: Agent, owned: OwnedLicence, licence: Licence, work: WorkStore,
               destination: Path) -> StreamedCopy | None:
    """The copy to write while downloading, for a work that is not marked."""
    try:
        return streamed_copy(store=work, manifest=work.manifest, licence=licence,
                             keys=licence.unwrap_keys(agent.device), destination=destination,
                             content_type=owned.content_type)
    except (DeliveryError, OSError) as exc:
        raise AgentError(f"Could not start the copy: {exc}") from exc


def sealed_table(agent: Agent, licence: Licence) -> bytes | None:
    """A sealed licence's encrypted personal table, from the platform (None for a marked
    licence). The platform serves it to this licence's buyer only; `deliver` checks it
    against the licence's hash before using it."""
    if licence.seal is None:
        return None
    cached = agent.home.licences_dir / f"{licence.licence_id}.table"
    try:
        kept = cached.read_bytes()
    except OSError:
        kept = b""
    if len(kept) == licence.seal.size and table_sha256(kept) == licence.seal.table_sha256:
        return kept  # encrypted to this licence's table key: safe to keep, usable offline
    try:
        table = agent.platform.licence_table(licence.licence_id, max_bytes=licence.seal.size)
    except PlatformUnreachableError as exc:
        raise AgentError("This work is sealed: its copy is made with a personal table the "
                         "platform serves, and the platform is unreachable. Try again "
                         "online.") from exc
    except PlatformError as exc:
        raise AgentError(f"Could not fetch the sealed work's personal table: {exc}") from exc
    if len(table) == licence.seal.size and table_sha256(table) == licence.seal.table_sha256:
        write_private(cached, table)
    return table


def deliver_copy(agent: Agent, owned: OwnedLicence, licence: Licence, work: WorkStore,
                 destination: Path, *, copy: StreamedCopy | None = None,
                 listener: GetListener | None = None) -> Delivery:
    """Decrypt, apply the marking rule, write atomically (see `agent.deliver`); with a
    copy written during the download, only finish it. A video's marking takes about its
    running time, so the listener hears how far it has come. A sealed work's personal
    table is fetched first (`sealed_table`)."""
    listener = listener or GetListener()
    try:
        if copy is not None:
            return copy.finish(work)
        table = sealed_table(agent, licence)
        return deliver(store=work, manifest=work.manifest, licence=licence,
                       keys=licence.unwrap_keys(agent.device), destination=destination,
                       content_type=owned.content_type,
                       progress=lambda done, total: listener.marking_progress(owned, done, total),
                       table=table)
    except DeliveryError as exc:
        raise AgentError(f"Could not write the copy: {exc}") from exc
    finally:
        listener.marking_finished()


def receipt(agent: Agent, owned: OwnedLicence, licence: Licence, delivery: Delivery,
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


def get_work(agent: Agent, work_id: str, *, destination: Path | None = None,
             allow_buy: bool = True, rate_limit_bps: int | None = None,
             listener: GetListener | None = None) -> GetOutcome:
    """Buy if needed, then fetch, verify, decrypt, mark, write and send the receipt.

    Keeping a plaintext copy is the licence's "download" term; without it the pieces stay
    encrypted in the store (for `view`) and nothing is written. `destination` defaults to
    the library; giving one for a licence that does not permit keeping a copy is an error.
    """
    listener = listener or GetListener()
    agent.device  # noqa: B018 (no keys yet: "run init first")
    agent.home.ensure()
    online = bool(agent.config.token) and agent.refresh_trust()
    owned = agent.licences.for_work(work_id)
    if owned is None:
        if not allow_buy:
            raise AgentError("You hold no licence for this work (and --no-buy was given).")
        agent.require_login()
        if not online:
            raise AgentError("You hold no licence for this work and the platform is "
                             "unreachable, so it cannot be bought now.")
        owned = held_on_platform(agent, work_id) or reissued_here(agent, work_id)
        if owned is None:
            owned = buy(agent, work_id)
            listener.bought(owned)
    licence = usable_licence(agent, owned)
    keep = licence.permits(Use.DOWNLOAD.value)
    if not keep and destination is not None:
        raise AgentError(f"Your licence permits {uses_text(licence)}, not keeping a copy, so "
                         "there is nothing to write to --out.")
    manifest, manifest_token = manifest_for(agent, owned, licence.manifest_root)
    store = PieceStore(agent.home.store_dir)
    summary = DownloadSummary()
    delivery: Delivery | None = None
    copy: StreamedCopy | None = None
    try:
        work = store.add_verified(manifest, manifest_token)
        held_before = work.held_count
        target = destination or agent.home.library_dir / file_name(owned)
        if keep and not work.complete:
            copy = start_copy(agent, owned, licence, work, target)
        if not work.complete:
            summary = download(agent, owned, work, licence=licence, online=online,
                               rate_limit_bps=rate_limit_bps, listener=listener, copy=copy)
        if keep:
            delivery = deliver_copy(agent, owned, licence, work, target, copy=copy,
                                    listener=listener)
            copy = None
    except BaseException:
        if copy is not None:
            copy.discard()
        # Closing saves the bitfield, which fails again on a full disk: the error to
        # tell is the first one (what is marked on disk stays true either way).
        with contextlib.suppress(StoreError):
            store.close(flush=False)
        raise
    # The copy is on disk; the store's flush is left to its next opener (the daemon or
    # the next command), which costs a flush on this boot and a re-check after a power
    # cut, never a wrong mark (agent.store).
    store.close(flush=False)
    outcome: str | None = None
    served: dict[str, int] = {}
    if delivery is not None:
        outcome, served = receipt(agent, owned, licence, delivery, online=online)
    return GetOutcome(owned, licence, manifest, held_before, summary, delivery, outcome, served)
