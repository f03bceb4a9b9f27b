"""End-to-end encrypted messages between agents: sealing, sending, receiving, storing.

A message is sealed with HPKE to each of the recipient's devices and signed by this
device (``licensing.core.direct_messages``). Each copy goes straight to that device's
peer server when the platform lists it as live (mode ``direct``: the platform never sees
it); if the device is offline or the delivery fails, the same envelope is handed to the
platform's relay (mode ``relayed``: the platform holds ciphertext it cannot read until
the device fetches it). docs/PROTOCOL.md, "Direct messages".

Received envelopes are checked (signature against the sender's device key as the
platform registered it, sealed to this device for this member, not from the future, not
from a member this one blocked) and stored as they came, one file per message id, in
the agent's folder; they are decrypted only when read. A message id seen before is
accepted again without storing it twice; another envelope under a stored id is a replay
and refused. What this member sent is kept beside them, as written (it is sealed to the
recipient's key, not this device's, so the envelope alone could not be read back).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agent.context import Agent
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError
from agent.wire import MESSAGE_PATH
from licensing.core import (
    DeviceKeys,
    DevicePublicKeys,
    DirectMessage,
    LicensingError,
    MalformedError,
    ReplayedError,
    UnknownKeyError,
    new_message_id,
    open_direct_message,
    read_direct_message,
    seal_direct_message,
)
from licensing.core.jws import parse_document
from licensing.core.kinds import DocumentKind

log = logging.getLogger(__name__)

MODE_DIRECT = "direct"
MODE_RELAYED = "relayed"
#: a stored message file is at most this large (an envelope and a little JSON around it)
_MAX_FILE_BYTES = DocumentKind.DIRECT_MESSAGE.max_token_bytes + 4096
#: how many received messages one folder keeps before refusing more (a flood's bound)
MAX_STORED = 10_000
#: how long a sender's registered device keys, and this member's blocks, are trusted
KEYS_TTL = 300.0
BLOCKS_TTL = 60.0
#: an unknown device is asked of the platform again at most this often per sender
KEYS_MISS_INTERVAL = 10.0
#: timeout of one direct delivery to a peer server
DELIVERY_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class RefusedError(LicensingError):
    """A well-formed envelope this member does not accept (its sender is blocked)."""


class InboxFullError(LicensingError):
    """The folder holds ``MAX_STORED`` received messages."""


@dataclass(frozen=True)
class StoredMessage:
    """One message as ``messages`` shows it."""

    message_id: str
    mode: str
    direction: str  # "in" or "out"
    member: str  # the other member
    created_at: int
    body: str
    subject: str
    error: str = ""
    #: for a sent message: device id -> how that device's copy went
    devices: dict[str, str] = field(default_factory=dict)


# --- what the platform says about devices and blocks, cached -----------------------------


class PlatformDirectory:
    """Senders' registered device keys and this member's blocks, from the platform's
    API, cached (``KEYS_TTL``, ``BLOCKS_TTL``): a peer server checks every envelope
    without asking the platform each time, and a flood of envelopes naming unknown
    devices costs at most one question per sender per ``KEYS_MISS_INTERVAL``."""

    def __init__(self, platform: PlatformClient, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._platform = platform
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, dict[str, DevicePublicKeys]]] = {}
        self._blocks: tuple[float, frozenset[str]] | None = None

    def device_key(self, username: str, device_id: str) -> DevicePublicKeys | None:
        """``username``'s device ``device_id`` if the platform registers it to them."""
        now = self._clock()
        with self._lock:
            cached = self._keys.get(username)
        if cached is not None:
            fetched_at, devices = cached
            fresh = now - fetched_at < KEYS_TTL
            if device_id in devices and fresh:
                return devices[device_id]
            if now - fetched_at < KEYS_MISS_INTERVAL:
                return devices.get(device_id) if fresh else None
        devices = self._fetch(username)
        with self._lock:
            self._keys[username] = (now, devices)
        return devices.get(device_id)

    def _fetch(self, username: str) -> dict[str, DevicePublicKeys]:
        try:
            listed = self._platform.member_devices(username)
        except PlatformError as error:
            if error.status in (403, 404):
                return {}  # no such member, or one who blocked us: no key verifies
            raise
        devices: dict[str, DevicePublicKeys] = {}
        for item in listed.get("devices", []):
            try:
                keys = DevicePublicKeys.from_b64url(signing=str(item["signing_key"]),
                                                    kem=str(item["kem_key"]))
            except (LicensingError, KeyError, TypeError):
                continue
            if keys.device_id == item.get("device_id"):
                devices[keys.device_id] = keys
        return devices

    def blocked(self, username: str) -> bool:
        """Whether this member has blocked ``username`` (as the platform knows it)."""
        now = self._clock()
        with self._lock:
            cached = self._blocks
        if cached is None or now - cached[0] >= BLOCKS_TTL:
            names = frozenset(str(b["username"]) for b in self._platform.blocks())
            cached = (now, names)
            with self._lock:
                self._blocks = cached
        return username in cached[1]


# --- the folder --------------------------------------------------------------------------


class MessageFolder:
    """Received envelopes (``in/``, one file per message id, stored as they came) and
    sent messages (``out/``), owner-only, in the agent's folder."""

    def __init__(self, root: Path, *, device: DeviceKeys, username: str,
                 key_for: Callable[[str, str], DevicePublicKeys | None],
                 blocked: Callable[[str], bool],
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self._in = root / "in"
        self._out = root / "out"
        self._device = device
        self._username = username
        self._key_for = key_for
        self._blocked = blocked
        self._clock = clock
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        for folder in (self.root, self._in, self._out):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def receive(self, token: object, *, mode: str) -> tuple[DirectMessage, bool]:
        """Check an envelope and store it: (envelope, stored now). Raises a
        ``LicensingError``: ``UnknownKeyError`` (no such device of the named sender),
        ``BadSignatureError``, ``WrongDeviceError`` (sealed to another device),
        ``MismatchError``-like ``MalformedError`` (for another member), ``RefusedError``
        (a blocked sender), ``ReplayedError`` (another envelope under a stored id)."""
        document = parse_document(token, DocumentKind.DIRECT_MESSAGE)
        sender = document.claims.get("from")
        if not isinstance(sender, str) or not 0 < len(sender) <= 150:
            raise MalformedError("the message names no sender")
        keys = self._key_for(sender, document.kid)
        if keys is None:
            raise UnknownKeyError("the platform registers no such device to the sender")
        envelope = read_direct_message(token, sender_device=keys,
                                       recipient_device_id=self._device.device_id,
                                       now=int(self._clock()))
        if envelope.recipient != self._username:
            raise MalformedError("the message is for another member")
        if self._blocked(envelope.sender):
            raise RefusedError("this member does not accept messages from the sender")
        assert isinstance(token, str | bytes)
        text = token if isinstance(token, str) else token.decode("ascii")
        record = {"mode": mode, "document": text, "received_at": int(self._clock())}
        return envelope, self._store_once(envelope.message_id, text, record)

    def _store_once(self, message_id: str, document: str, record: dict[str, Any]) -> bool:
        path = self._in / f"{message_id}.json"
        with self._lock:
            self._ensure()
            if path.exists():
                if _read_record(path).get("document") == document:
                    return False
                raise ReplayedError("another message with this id was received before")
            if sum(1 for _ in self._in.iterdir()) >= MAX_STORED:
                raise InboxFullError("this agent's message folder is full")
            data = json.dumps(record).encode()
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise ReplayedError("another message with this id was received before") \
                    from None
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        return True

    def record_sent(self, *, message_id: str, to: str, body: str, subject: str,
                    created_at: int, modes: dict[str, str]) -> None:
        """Keep what this member sent, and which way each device's copy went."""
        with self._lock:
            self._ensure()
            path = self._out / f"{message_id}.json"
            data = json.dumps({"to": to, "body": body, "subject": subject,
                               "created_at": created_at, "modes": modes}).encode()
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)

    def messages(self) -> list[StoredMessage]:
        """Every stored message, oldest first; received ones are opened now."""
        found: list[StoredMessage] = []
        for path in sorted(self._in.glob("*.json")) if self._in.is_dir() else []:
            found.append(self._open(path))
        for path in sorted(self._out.glob("*.json")) if self._out.is_dir() else []:
            record = _read_record(path)
            modes = record.get("modes")
            modes = {str(k): str(v) for k, v in modes.items()} if isinstance(modes, dict) else {}
            found.append(StoredMessage(
                message_id=path.stem, mode=sent_mode(modes), direction="out",
                member=str(record.get("to", "")), created_at=int(record.get("created_at", 0)),
                body=str(record.get("body", "")), subject=str(record.get("subject", "")),
                devices=modes))
        return sorted(found, key=lambda m: (m.created_at, m.message_id))

    def _open(self, path: Path) -> StoredMessage:
        record = _read_record(path)
        mode = str(record.get("mode", ""))
        token = record.get("document")
        try:
            document = parse_document(token, DocumentKind.DIRECT_MESSAGE)
            sender = str(document.claims.get("from", ""))
            keys = self._key_for(sender, document.kid)
            if keys is None:
                raise UnknownKeyError("the sender's device is no longer registered")
            envelope = read_direct_message(token, sender_device=keys,
                                           recipient_device_id=self._device.device_id,
                                           now=int(self._clock()))
            text = open_direct_message(envelope, device=self._device)
        except (LicensingError, PlatformError, PlatformUnreachableError) as error:
            return StoredMessage(message_id=path.stem, mode=mode, direction="in", member="",
                                 created_at=int(record.get("received_at", 0)), body="",
                                 subject="", error=str(error) or type(error).__name__)
        return StoredMessage(message_id=envelope.message_id, mode=mode, direction="in",
                             member=envelope.sender, created_at=envelope.issued_at,
                             body=text.body, subject=text.subject)


def sent_mode(modes: dict[str, str]) -> str:
    """A sent message's label: ``direct`` or ``relayed`` when every device's copy went
    that way, ``direct+relayed`` when some went each way."""
    kinds = set(modes.values())
    if kinds == {MODE_DIRECT}:
        return MODE_DIRECT
    if kinds == {MODE_RELAYED}:
        return MODE_RELAYED
    return f"{MODE_DIRECT}+{MODE_RELAYED}"


def _read_record(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
        value = json.loads(data) if len(data) <= _MAX_FILE_BYTES else None
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# --- sending ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    message_id: str
    #: device id -> "direct" or "relayed"
    modes: dict[str, str]


class NoDevicesError(Exception):
    """The recipient has no agent device to seal a message to."""


def deliver_direct(endpoint: str, document: str, *,
                   transport: httpx.BaseTransport | None = None) -> bool:
    """Hand an envelope to a peer server; True when it says it has it."""
    try:
        with httpx.Client(timeout=DELIVERY_TIMEOUT, transport=transport) as client:
            response = client.post(endpoint.rstrip("/") + MESSAGE_PATH,
                                   json={"document": document})
    except httpx.HTTPError as error:
        log.info("direct delivery to %s failed: %s", endpoint, error)
        return False
    return response.status_code in (200, 201)


def send_sealed(platform: PlatformClient, device: DeviceKeys, *, sender: str, to: str,
                body: str, subject: str = "", direct: bool = True,
                clock: Callable[[], float] = time.time,
                deliver: Callable[[str, str], bool] = deliver_direct) -> SendResult:
    """Seal ``body`` to each of ``to``'s devices and send each copy directly when the
    device is live (and ``direct``), else through the platform's relay. Raises
    ``PlatformError`` (a block, an unknown member, the relay's refusals) and
    ``NoDevicesError``."""
    listed = platform.member_devices(to)
    devices = [d for d in listed.get("devices", []) if isinstance(d, dict)]
    if not devices:
        raise NoDevicesError(to)
    message_id = new_message_id()
    now = int(clock())
    modes: dict[str, str] = {}
    for item in devices:
        keys = DevicePublicKeys.from_b64url(signing=str(item["signing_key"]),
                                            kem=str(item["kem_key"]))
        if keys.device_id != item.get("device_id"):
            raise MalformedError("the platform listed a device whose id is not its keys'")
        document = seal_direct_message(device, sender=sender, recipient=to,
                                       recipient_device=keys, message_id=message_id,
                                       body=body, subject=subject, issued_at=now)
        endpoint = item.get("endpoint")
        if direct and isinstance(endpoint, str) and endpoint and deliver(endpoint, document):
            modes[keys.device_id] = MODE_DIRECT
            continue
        # one key per copy: a retry after a lost answer stores it once
        key = f"dm:{message_id}:{keys.device_id}"
        try:
            platform.relayed_send(document=document, idempotency_key=key)
        except PlatformUnreachableError:
            platform.relayed_send(document=document, idempotency_key=key)
        modes[keys.device_id] = MODE_RELAYED
    return SendResult(message_id=message_id, modes=modes)


def fetch_relayed(platform: PlatformClient, folder: MessageFolder, *,
                  device_id: str) -> tuple[int, int]:
    """Fetch what the platform relays for this device, store it, acknowledge it:
    (stored, refused). A copy that does not verify is acknowledged too (it can never be
    shown) and counted as refused."""
    stored = refused = 0
    for item in list(platform.relayed(device_id=device_id)):
        try:
            _envelope, new = folder.receive(item.get("document"), mode=MODE_RELAYED)
            stored += int(new)
        except (InboxFullError, PlatformUnreachableError):
            raise
        except LicensingError as error:
            log.warning("a relayed message did not verify: %s", error)
            refused += 1
        try:
            platform.relayed_ack(str(item["id"]))
        except PlatformError as error:
            if error.status != 404:  # 404: already acknowledged
                raise
    return stored, refused


def folder_for(agent: Agent) -> MessageFolder:
    """This agent's message folder, checking senders against the platform."""
    directory = PlatformDirectory(agent.platform)
    return MessageFolder(agent.home.root / "messages", device=agent.device,
                         username=agent.config.username, key_for=directory.device_key,
                         blocked=directory.blocked)
