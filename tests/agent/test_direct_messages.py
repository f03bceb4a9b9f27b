"""End-to-end encrypted messages on the agents' side.

The recipient's folder and peer server from the attacker's side (a forged signature, a
device the platform does not register to the named sender, a copy sealed to another
device or member, a replay, an oversized or malformed body, a blocked sender), then two
real agent processes against a real platform on loopback: one message delivered directly,
and one relayed while the recipient is offline and fetched later.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.direct_messages import (
    MODE_DIRECT,
    MessageFolder,
    RefusedError,
    fetch_relayed,
    send_sealed,
)
from agent.platform import PlatformError
from agent.server import PieceServer, start_server
from agent.wire import MESSAGE_PATH
from licensing.core import (
    BadSignatureError,
    DeviceKeys,
    DevicePublicKeys,
    MalformedError,
    NotYetValidError,
    OversizedError,
    ReplayedError,
    UnknownKeyError,
    WrongDeviceError,
    new_message_id,
    seal_direct_message,
)
from licensing.core.jws import sign_document
from licensing.core.kinds import DocumentKind
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform

NOW = 1_800_000_000


class Directory:
    """What the platform would say: registered devices per member, and rita's blocks."""

    def __init__(self) -> None:
        self.devices: dict[str, dict[str, DevicePublicKeys]] = {}
        self.blocks: set[str] = set()

    def register(self, username: str, keys: DeviceKeys) -> None:
        self.devices.setdefault(username, {})[keys.device_id] = keys.public

    def key_for(self, username: str, device_id: str) -> DevicePublicKeys | None:
        return self.devices.get(username, {}).get(device_id)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    bob, rita, carol = DeviceKeys.generate(), DeviceKeys.generate(), DeviceKeys.generate()
    directory = Directory()
    directory.register("bob", bob)
    directory.register("rita", rita)
    directory.register("carol", carol)
    folder = MessageFolder(tmp_path / "rita-messages", device=rita, username="rita",
                           key_for=directory.key_for, blocked=directory.blocks.__contains__,
                           clock=lambda: NOW)
    return {"bob": bob, "rita": rita, "carol": carol, "directory": directory, "folder": folder}


def seal(keys: DeviceKeys, to: DeviceKeys, *, sender: str = "bob", recipient: str = "rita",
         body: str = "meet at the harbour", mid: str | None = None) -> str:
    return seal_direct_message(keys, sender=sender, recipient=recipient,
                               recipient_device=to.public, message_id=mid or new_message_id(),
                               body=body, subject="harbour", issued_at=NOW)


def test_a_message_is_stored_sealed_and_opened_only_when_read(world) -> None:
    folder: MessageFolder = world["folder"]
    envelope, stored = folder.receive(seal(world["bob"], world["rita"]), mode=MODE_DIRECT)
    assert stored
    [path] = list((folder.root / "in").iterdir())
    assert path.name == f"{envelope.message_id}.json"
    assert "harbour" not in path.read_text()  # kept as it came: sealed
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    [message] = folder.messages()
    assert (message.mode, message.direction, message.member, message.body, message.subject) == (
        "direct", "in", "bob", "meet at the harbour", "harbour")


def test_a_replay_is_accepted_once_and_a_changed_copy_is_refused(world) -> None:
    folder: MessageFolder = world["folder"]
    mid = new_message_id()
    token = seal(world["bob"], world["rita"], mid=mid)
    assert folder.receive(token, mode=MODE_DIRECT)[1] is True
    assert folder.receive(token, mode=MODE_DIRECT)[1] is False  # again: stored once
    with pytest.raises(ReplayedError):
        folder.receive(seal(world["bob"], world["rita"], mid=mid, body="changed"),
                       mode=MODE_DIRECT)
    assert [m.body for m in folder.messages()] == ["meet at the harbour"]


def test_a_forged_signature_is_refused(world) -> None:
    # carol signs an envelope whose kid names bob's device
    claims = json.loads(_payload(seal(world["bob"], world["rita"])))
    forged = sign_document(DocumentKind.DIRECT_MESSAGE, claims, kid=world["bob"].device_id,
                           key=world["carol"]._signing_jwk)
    with pytest.raises(BadSignatureError):
        world["folder"].receive(forged, mode=MODE_DIRECT)
    assert world["folder"].messages() == []


def test_a_device_not_registered_to_the_named_sender_is_refused(world) -> None:
    # carol's own, correctly signed envelope, but claiming to be from bob
    with pytest.raises(UnknownKeyError):
        world["folder"].receive(seal(world["carol"], world["rita"], sender="bob"),
                                mode=MODE_DIRECT)
    stranger = DeviceKeys.generate()
    with pytest.raises(UnknownKeyError):
        world["folder"].receive(seal(stranger, world["rita"]), mode=MODE_DIRECT)


def test_a_copy_for_another_device_or_member_is_refused(world) -> None:
    folder: MessageFolder = world["folder"]
    with pytest.raises(WrongDeviceError):  # sealed to carol's device
        folder.receive(seal(world["bob"], world["carol"], recipient="carol"), mode=MODE_DIRECT)
    with pytest.raises(MalformedError):  # sealed to rita's device but addressed to carol
        folder.receive(seal(world["bob"], world["rita"], recipient="carol"), mode=MODE_DIRECT)
    assert folder.messages() == []


def test_a_blocked_sender_is_refused(world) -> None:
    world["directory"].blocks.add("bob")
    with pytest.raises(RefusedError):
        world["folder"].receive(seal(world["bob"], world["rita"]), mode=MODE_DIRECT)
    assert world["folder"].messages() == []


def test_oversized_text_cannot_be_sealed_and_an_oversized_token_is_refused(world) -> None:
    with pytest.raises(OversizedError):
        seal(world["bob"], world["rita"], body="가" * 9000)  # 27,000 bytes of UTF-8
    with pytest.raises(OversizedError):
        world["folder"].receive("A" * (48 * 1024 + 1), mode=MODE_DIRECT)


def test_a_message_from_the_future_is_refused(world) -> None:
    token = seal_direct_message(world["bob"], sender="bob", recipient="rita",
                                recipient_device=world["rita"].public,
                                message_id=new_message_id(), body="x", issued_at=NOW + 3600)
    with pytest.raises(NotYetValidError):
        world["folder"].receive(token, mode=MODE_DIRECT)


def _payload(token: str) -> bytes:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- the peer server's route ---------------------------------------------------------------


def test_the_peer_server_takes_checks_and_refuses(world, tmp_path: Path) -> None:
    async def post(url: str, body: bytes) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(
                url, data=body, headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json()

    async def scenario() -> list[tuple[int, Any]]:
        server = PieceServer(store=None, device_id=world["rita"].device_id,  # type: ignore[arg-type]
                             keyring_provider=lambda: None,  # type: ignore[arg-type,return-value]
                             revocations_provider=lambda: None,  # type: ignore[arg-type,return-value]
                             outbox=None, messages=world["folder"])  # type: ignore[arg-type]
        running = await start_server(server.app())
        url = running.url + MESSAGE_PATH
        token = seal(world["bob"], world["rita"])
        try:
            return [
                await post(url, json.dumps({"document": token}).encode()),
                await post(url, json.dumps({"document": token}).encode()),
                await post(url, json.dumps({"document": seal(world["carol"], world["rita"],
                                                             sender="bob")}).encode()),
                await post(url, json.dumps({"document": seal(world["bob"], world["carol"],
                                                             recipient="carol")}).encode()),
                await post(url, b"\xff\xfe not json"),
                await post(url, json.dumps({"document": token, "extra": 1}).encode()),
                await post(url, json.dumps({"document": "x" * 70_000}).encode()),
            ]
        finally:
            await running.stop()

    answers = asyncio.run(scenario())
    statuses = [status for status, _ in answers]
    assert statuses == [201, 200, 401, 403, 400, 400, 413]
    assert answers[0][1]["stored"] is True
    assert answers[1][1]["stored"] is False
    assert answers[2][1]["error"]["code"] == "unknown-key"
    assert answers[3][1]["error"]["code"] == "wrong-device"
    assert len(world["folder"].messages()) == 1


# --- two real agents on loopback --------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("direct-messages")) as running:
        yield running


def _relayed_rows(site: Platform, device_id: str) -> list[dict[str, Any]]:
    """What the platform holds for one device, read from its database."""
    return list(site.query(
        "import json; from exchange.messaging.models import RelayedMessage as R; "
        "print(json.dumps([{'document': r.document, 'size': r.size, "
        "'sender': r.sender.username} for r in "
        f"R.objects.filter(recipient_device_id={device_id!r})]))"))


def _agents(site: Platform, tmp_path: Path) -> tuple[AgentProcess, AgentProcess, str]:
    """Bob's laptop and Rita's studio, set up; and the studio's device id."""
    sender = AgentProcess(tmp_path, "bob-laptop", site.url)
    sender.setup("bob", site.logins["bob"])
    recipient = AgentProcess(tmp_path, "rita-studio", site.url)
    return sender, recipient, recipient.setup("rita", site.logins["rita"])


@pytest.mark.e2e
@pytest.mark.slow
def test_two_agents_message_each_other_directly(site: Platform, tmp_path: Path) -> None:
    sender, recipient, studio = _agents(site, tmp_path)
    with recipient.serving():
        sent = sender.run("messages", "send", "rita", "The harbour print is on its way.",
                          "--direct", "--subject", "harbour")
        # (rita's other devices, offline, get their copies through the relay)
        assert sent["devices"][studio] == "direct"
        assert _relayed_rows(site, studio) == []  # nothing on the platform for this copy
        thread = recipient.run("messages", "read", "bob")
    assert [(m["mode"], m["direction"], m["member"], m["subject"], m["body"])
            for m in thread["sealed"]] == [
        ("direct", "in", "bob", "harbour", "The harbour print is on its way.")]
    # what is on rita's disk is the sealed envelope, not the text
    [stored] = list((recipient.home / "messages" / "in").iterdir())
    assert "harbour" not in stored.read_text()
    mine = sender.run("messages")["sealed"]
    assert [(m["devices"][studio], m["direction"], m["member"]) for m in mine] == [
        ("direct", "out", "rita")]


@pytest.mark.e2e
@pytest.mark.slow
def test_an_offline_recipient_fetches_a_relayed_message_later(site: Platform,
                                                              tmp_path: Path) -> None:
    sender, recipient, studio = _agents(site, tmp_path)
    # rita's studio is not serving: its copy goes through the relay
    sent = sender.run("messages", "send", "rita", "Tracking number 42.", "--direct",
                      "--subject", "tracking")
    assert sent["devices"][studio] == "relayed"
    assert set(sent["devices"].values()) == {"relayed"}
    [row] = _relayed_rows(site, studio)
    assert row["sender"] == "bob"
    assert "Tracking" not in row["document"]  # the platform holds ciphertext only
    assert "tracking" not in row["document"]

    listed = recipient.run("messages")
    assert [(m["mode"], m["direction"], m["member"], m["body"]) for m in listed["sealed"]] == [
        ("relayed", "in", "bob", "Tracking number 42.")]
    assert _relayed_rows(site, studio) == []  # fetched and acknowledged: forgotten
    again = recipient.run("messages")  # nothing is fetched twice
    assert [m["body"] for m in again["sealed"]] == ["Tracking number 42."]
    mine = sender.run("messages")["sealed"]
    assert [(m["mode"], m["direction"], m["member"]) for m in mine] == [
        ("relayed", "out", "rita")]
    # a member who blocked the sender: neither the device list nor the relay helps
    with site.api("rita") as client:
        assert client.post("/api/v1/blocks/", json={"username": "bob"}).status_code == 201
        try:
            refused = sender.run("messages", "send", "rita", "hello?", "--direct",
                                 check=False)
        finally:
            client.delete("/api/v1/blocks/bob/")
    assert refused.returncode != 0
    assert "does not accept messages from you" in refused.stderr
    assert _relayed_rows(site, studio) == []


def test_fetching_relayed_needs_nothing_else_of_the_platform(world, tmp_path: Path) -> None:
    """``fetch_relayed`` stores what verifies, drops (and acknowledges) what does not."""

    class Relay:
        def __init__(self, items: list[dict[str, Any]]) -> None:
            self.items = items
            self.acked: list[str] = []

        def relayed(self, *, device_id: str) -> Iterator[dict[str, Any]]:
            assert device_id == world["rita"].device_id
            return iter(self.items)

        def relayed_ack(self, relayed_id: str) -> None:
            if relayed_id == "gone":
                raise PlatformError(404, "not_found", "No such message.")
            self.acked.append(relayed_id)

    good = seal(world["bob"], world["rita"])
    forged = seal(world["carol"], world["rita"], sender="bob")
    relay = Relay([{"id": "1", "document": good}, {"id": "2", "document": forged},
                   {"id": "gone", "document": good}])
    stored, refused = fetch_relayed(relay, world["folder"],  # type: ignore[arg-type]
                                    device_id=world["rita"].device_id)
    assert (stored, refused, relay.acked) == (1, 1, ["1", "2"])
    assert [m.mode for m in world["folder"].messages()] == ["relayed"]


def test_send_goes_direct_to_live_devices_and_relays_the_rest(world) -> None:
    phone = DeviceKeys.generate()

    class Platform:
        relayed: list[tuple[str, str]] = []

        def member_devices(self, username: str) -> dict[str, Any]:
            assert username == "rita"
            return {"username": "rita", "devices": [
                {"device_id": world["rita"].device_id, **_keys(world["rita"]),
                 "endpoint": "http://127.0.0.1:9"},
                {"device_id": phone.device_id, **_keys(phone), "endpoint": None}]}

        def relayed_send(self, *, document: str, idempotency_key: str) -> dict[str, Any]:
            self.relayed.append((document, idempotency_key))
            return {}

    delivered: list[tuple[str, str]] = []
    fake = Platform()
    result = send_sealed(fake, world["bob"], sender="bob", to="rita",  # type: ignore[arg-type]
                         body="hi", clock=lambda: NOW,
                         deliver=lambda url, doc: delivered.append((url, doc)) is None)
    assert result.modes == {world["rita"].device_id: "direct", phone.device_id: "relayed"}
    [(url, direct_copy)] = delivered
    assert url == "http://127.0.0.1:9"
    [(relayed_copy, key)] = fake.relayed
    assert key == f"dm:{result.message_id}:{phone.device_id}"
    assert direct_copy != relayed_copy  # one sealed copy per device
    # a failed direct delivery falls back to the relay
    fake.relayed.clear()
    result = send_sealed(fake, world["bob"], sender="bob", to="rita",  # type: ignore[arg-type]
                         body="hi", clock=lambda: NOW, deliver=lambda _u, _d: False)
    assert set(result.modes.values()) == {"relayed"}
    assert len(fake.relayed) == 2


def _keys(keys: DeviceKeys) -> dict[str, str]:
    public = keys.public.to_b64url()
    return {"signing_key": public["sig"], "kem_key": public["kem"]}



# --- the CLI in process, against the platform's live server ---------------------------------


def _cli(home: Path, capsys: pytest.CaptureFixture[str], *args: str,
         json_out: bool = True) -> tuple[int, Any, str]:
    from agent.cli import main

    code = main(["--data-dir", str(home), *(["--json"] if json_out else []), *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if json_out and out.strip() else out), err


def _logged_in(live_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    import io

    from tests.conftest import PASSWORD

    home = tmp_path / f"{name}-agent"
    _cli(home, capsys, "init", "--platform", live_server.url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _data, err = _cli(home, capsys, "login", "--username", name, "--password-stdin")
    assert code == 0, err
    return home


@pytest.mark.django_db(transaction=True)
def test_messages_labels_each_mode_and_keeps_the_terminal_safe(
        live_server, tmp_path, capsys, monkeypatch, bob, rita, carol, settings) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.MESSAGING_SEND_RATE = "100/min"
    bob_home = _logged_in(live_server, tmp_path, capsys, monkeypatch, "bob")
    rita_home = _logged_in(live_server, tmp_path, capsys, monkeypatch, "rita")
    code, sent, err = _cli(bob_home, capsys, "messages", "send", "rita",
                           "Sealed \x1b[31mred\x1b[0m \u202etxt", "--direct", "--subject", "s1")
    assert code == 0, err
    assert list(sent["devices"].values()) == ["relayed"]  # rita's agent is not serving
    code, _sent, err = _cli(bob_home, capsys, "messages", "send", "rita", "Through the platform")
    assert code == 0, err
    code, text, _ = _cli(rita_home, capsys, "messages", json_out=False)
    assert code == 0
    assert "1 unread [platform]" in text
    assert "[relayed] bob · just now · s1\n  Sealed [31mred[0m txt" in text
    for control in ("\x1b", "\u202e"):
        assert control not in text
    code, thread, _ = _cli(rita_home, capsys, "messages", "read", "bob", json_out=False)
    assert "[platform] bob · just now [new]\n  Through the platform" in thread
    assert "[relayed] bob · just now · s1" in thread
    code, mine, _ = _cli(bob_home, capsys, "messages", json_out=False)
    assert "[relayed] you → rita · just now · s1" in mine
    # a member with no agent device cannot be sent a sealed message
    code, _out, err = _cli(rita_home, capsys, "messages", "send", "carol", "hi", "--direct")
    assert code != 0
    assert "no agent device" in err
