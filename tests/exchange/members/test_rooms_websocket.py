"""Chat rooms over WebSockets (exchange/rooms/consumers.py), through Channels' own
communicator and the real ASGI stack (origin check, session or bearer sign-in, routing),
every rule tried from the attacker's side. Expected frames are written out by hand.

The tests run with real transactions (``transaction=True``): the consumer reads the
database from its own thread, and lines are broadcast only once they commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client

from exchange.accounts.models import User
from exchange.accounts.services import api_token_create
from exchange.audit.models import AuditEvent
from exchange.rooms.models import Room, RoomMessage, RoomSanction
from exchange.rooms.routing import websocket_application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()  # the member rate limits count in the cache


COOKIES: dict[int, tuple[bytes, bytes]] = {}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run the scenario's event loop, with every member signed in to the portal first
    (the scenario's sockets then carry their session cookies)."""
    COOKIES.clear()
    for user in User.objects.all():
        COOKIES[user.pk] = cookie_of(user)
    async_to_sync(scenario)()


def cookie_of(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def socket(path: str, user: User | None = None, *, origin: bool = True,
           extra: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN] if origin else []
    if user is not None:
        headers.append(COOKIES[user.pk])
    return WebsocketCommunicator(websocket_application(), path, headers=headers + (extra or []))


def work_path(work: Any) -> str:
    return f"/ws/rooms/work/{work.pk}/"


async def join(comm: WebsocketCommunicator) -> dict[str, Any]:
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from()
    assert frame["type"] == "joined", frame
    return frame


async def refused(comm: WebsocketCommunicator) -> tuple[dict[str, Any], int]:
    """The error frame and the close code of a socket the server turns away."""
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from()
    closing = await comm.receive_output()
    assert closing["type"] == "websocket.close"
    return frame, closing["code"]


async def closed_with(comm: WebsocketCommunicator) -> int:
    closing = await comm.receive_output()
    assert closing["type"] == "websocket.close", closing
    return int(closing["code"])


# --- joining -------------------------------------------------------------------------


def test_two_members_chat_and_each_sees_the_other(work: Any, bob: User, carol: User) -> None:
    async def scenario() -> None:
        bobs, carols = socket(work_path(work), bob), socket(work_path(work), carol)
        joined = await join(bobs)
        assert joined["room"]["title"] == "Harbour at dawn"
        assert joined["room"]["owner"] == "rita"
        assert joined["you"] == {"username": "bob", "moderator": False, "muted_until": None}
        assert joined["history"] == []
        await join(carols)
        await bobs.send_json_to({"type": "say", "text": "안녕하세요 <b>all</b>", "nonce": "n1"})
        ack = await bobs.receive_json_from()
        seen_by_bob = await bobs.receive_json_from()
        seen_by_carol = await carols.receive_json_from()
        assert ack["type"] == "ack"
        assert ack["nonce"] == "n1"
        assert seen_by_bob == seen_by_carol
        assert seen_by_carol["type"] == "message"
        assert seen_by_carol["message"]["author"] == "bob"
        assert seen_by_carol["message"]["text"] == "안녕하세요 <b>all</b>"  # text, never HTML
        await bobs.disconnect()
        await carols.disconnect()

    run(scenario)
    assert list(RoomMessage.objects.values_list("author__username", "text")) == [
        ("bob", "안녕하세요 <b>all</b>")]


def test_the_last_lines_come_on_join_oldest_first(work: Any, bob: User, carol: User,
                                                 settings: Any) -> None:
    settings.ROOMS_HISTORY_ON_JOIN = 2
    room = Room.objects.create(kind="work", work=work, owner=work.owner)
    for text in ("one", "two", "three"):
        RoomMessage.objects.create(room=room, author=bob, text=text)

    async def scenario() -> None:
        comm = socket(work_path(work), carol)
        joined = await join(comm)
        assert [line["text"] for line in joined["history"]] == ["two", "three"]
        await comm.disconnect()

    run(scenario)


def test_an_anonymous_visitor_cannot_join(work: Any) -> None:
    async def scenario() -> None:
        frame, code = await refused(socket(work_path(work)))
        assert frame["code"] == "not_authenticated"
        assert code == 4401

    run(scenario)


def test_a_draft_or_unknown_room_is_not_found(rita: User, bob: User,
                                             make_work: Callable[..., Any]) -> None:
    from exchange.catalogue.models import Work, WorkStatus

    draft = make_work(rita, title="Draft")
    # (with real transactions the processing runs at once: put it back by hand)
    Work.objects.filter(pk=draft.pk).update(status=WorkStatus.PROCESSING)

    async def scenario() -> None:
        for path in (work_path(draft), "/ws/rooms/work/not-a-uuid/", "/ws/rooms/member/bob/",
                     "/ws/rooms/member/nobody/"):
            frame, code = await refused(socket(path, bob))
            assert (frame["code"], code) == ("not_found", 4404), path

    run(scenario)


def test_a_rights_holders_room_is_open_to_members(rita: User, bob: User) -> None:
    async def scenario() -> None:
        comm = socket("/ws/rooms/member/rita/", bob)
        joined = await join(comm)
        assert joined["room"]["kind"] == "member"
        assert joined["room"]["target"] == "rita"
        await comm.disconnect()

    run(scenario)


def test_another_sites_page_cannot_use_a_members_session(work: Any, bob: User) -> None:
    async def scenario() -> None:
        comm = socket(work_path(work), bob, origin=False,
                      extra=[(b"origin", b"https://evil.example")])
        connected, _ = await comm.connect()
        assert not connected

    run(scenario)


def test_without_an_origin_cookies_do_not_count_but_a_bearer_token_does(
        work: Any, bob: User) -> None:
    raw = api_token_create(user=bob, name="agent").raw

    async def scenario() -> None:
        frame, code = await refused(socket(work_path(work), bob, origin=False))
        assert (frame["code"], code) == ("not_authenticated", 4401)
        agent = socket(work_path(work), origin=False,
                       extra=[(b"authorization", f"Bearer {raw}".encode())])
        joined = await join(agent)
        assert joined["you"]["username"] == "bob"
        await agent.disconnect()
        forged = socket(work_path(work), origin=False,
                        extra=[(b"authorization", b"Bearer pmk_forged")])
        frame, code = await refused(forged)
        assert code == 4401

    run(scenario)


# --- restricted rooms ----------------------------------------------------------------


def test_a_restricted_room_turns_away_a_member_without_a_licence(licensed: Any, bob: User,
                                                                 carol: User, rita: User) -> None:
    Room.objects.create(kind="work", work=licensed, owner=rita, restricted=True)

    async def scenario() -> None:
        frame, code = await refused(socket(work_path(licensed), carol))
        assert (frame["code"], code) == ("licence_required", 4403)
        bobs = socket(work_path(licensed), bob)
        await join(bobs)
        owner = socket(work_path(licensed), rita)
        assert (await join(owner))["you"]["moderator"] is True
        await bobs.disconnect()
        await owner.disconnect()

    run(scenario)


def test_a_revoked_licence_no_longer_opens_a_restricted_room(licensed: Any, bob: User,
                                                            rita: User) -> None:
    from django.utils import timezone

    from exchange.licensing.models import Licence

    Room.objects.create(kind="work", work=licensed, owner=rita, restricted=True)
    Licence.objects.filter(buyer=bob).update(revoked_at=timezone.now())

    async def scenario() -> None:
        frame, code = await refused(socket(work_path(licensed), bob))
        assert (frame["code"], code) == ("licence_required", 4403)

    run(scenario)


def test_restricting_a_room_closes_the_sockets_of_those_without_a_licence(
        licensed: Any, bob: User, carol: User, rita: User) -> None:
    async def scenario() -> None:
        owner, bobs, carols = (socket(work_path(licensed), who) for who in (rita, bob, carol))
        for comm in (owner, bobs, carols):
            await join(comm)
        await owner.send_json_to({"type": "rules", "restricted": True})
        assert await owner.receive_json_from() == {"type": "rules", "restricted": True,
                                                   "slow_mode_seconds": 0}
        assert await bobs.receive_json_from() == {"type": "rules", "restricted": True,
                                                  "slow_mode_seconds": 0}
        frame = await carols.receive_json_from()
        assert frame["code"] == "licence_required"
        assert await closed_with(carols) == 4403
        await owner.disconnect()
        await bobs.disconnect()

    run(scenario)
    assert Room.objects.get().restricted is True
    assert AuditEvent.objects.filter(action="room_rules").count() == 1


# --- bad frames ----------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "malformed"),
    ('["say", "hi"]', "malformed"),
    ('{"text": "no type"}', "malformed"),
    ('{"type": "shout", "text": "hi"}', "unknown_type"),
    ('{"type": "say", "text": 42}', "invalid"),
    ('{"type": "say", "text": "   "}', "empty"),
    ('{"type": "say", "text": "bell \\u0007"}', "invalid_characters"),
    ('{"type": "say", "text": "lone \\ud800"}', "invalid_characters"),
    ('{"type": "say", "text": "hi", "nonce": "has space"}', "invalid"),
])
def test_a_bad_frame_gets_an_error_and_stores_nothing(work: Any, bob: User, carol: User,
                                                     frame: str, code: str) -> None:
    async def scenario() -> None:
        bobs, carols = socket(work_path(work), bob), socket(work_path(work), carol)
        await join(bobs)
        await join(carols)
        await bobs.send_to(text_data=frame)
        error = await bobs.receive_json_from()
        assert error["type"] == "error"
        assert error["code"] == code
        assert await carols.receive_nothing()  # nobody else's view is affected
        await bobs.disconnect()
        await carols.disconnect()

    run(scenario)
    assert RoomMessage.objects.count() == 0


def test_an_oversized_frame_is_refused_before_it_is_parsed(work: Any, bob: User,
                                                          settings: Any) -> None:
    settings.ROOMS_MAX_FRAME_BYTES = 1024

    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        # invalid JSON too: the size is what it is refused for
        await comm.send_to(text_data='{"type": "say", "text": "' + "가" * 400)
        assert (await comm.receive_json_from())["code"] == "too_large"
        await comm.send_to(bytes_data=b"x" * 1025)
        assert (await comm.receive_json_from())["code"] == "too_large"
        await comm.disconnect()

    run(scenario)
    assert RoomMessage.objects.count() == 0


def test_a_line_longer_than_the_limit_is_refused(work: Any, bob: User, settings: Any) -> None:
    settings.ROOMS_MAX_CHARS = 10

    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        await comm.send_json_to({"type": "say", "text": "x" * 11})
        assert (await comm.receive_json_from())["code"] == "too_long"
        await comm.disconnect()

    run(scenario)
    assert RoomMessage.objects.count() == 0


def test_a_binary_frame_must_be_valid_utf8(work: Any, bob: User) -> None:
    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        await comm.send_to(bytes_data=b'{"type": "say", "text": "\xff\xfe"}')
        assert (await comm.receive_json_from())["code"] == "invalid_encoding"
        await comm.send_to(bytes_data='{"type": "say", "text": "바이트"}'.encode())
        assert (await comm.receive_json_from())["type"] == "ack"
        await comm.disconnect()

    run(scenario)
    assert list(RoomMessage.objects.values_list("text", flat=True)) == ["바이트"]


def test_repeated_abuse_closes_the_socket_with_4429(work: Any, bob: User, settings: Any) -> None:
    settings.ROOMS_MAX_STRIKES = 3

    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        for _ in range(3):
            await comm.send_to(text_data="{{{")
            assert (await comm.receive_json_from())["code"] == "malformed"
        assert (await comm.receive_json_from())["code"] == "abuse"
        assert await closed_with(comm) == 4429

    run(scenario)


def test_frames_sent_too_fast_are_refused(work: Any, bob: User, settings: Any) -> None:
    settings.ROOMS_FRAME_RATE = "3/1h"
    settings.ROOMS_SAY_RATE = "100/min"

    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        for number in range(3):
            await comm.send_json_to({"type": "say", "text": f"line {number}"})
            assert (await comm.receive_json_from())["type"] == "ack"
            assert (await comm.receive_json_from())["type"] == "message"
        await comm.send_json_to({"type": "say", "text": "one too many"})
        assert (await comm.receive_json_from())["code"] == "too_fast"
        await comm.disconnect()

    run(scenario)
    assert RoomMessage.objects.count() == 3


def test_the_member_rate_limit_counts_across_sockets(work: Any, bob: User, settings: Any) -> None:
    settings.ROOMS_SAY_RATE = "2/1h"

    async def scenario() -> None:
        first, second = socket(work_path(work), bob), socket("/ws/rooms/member/rita/", bob)
        await join(first)
        await join(second)
        await first.send_json_to({"type": "say", "text": "one"})
        await first.receive_json_from()
        await first.receive_json_from()
        await second.send_json_to({"type": "say", "text": "two"})
        await second.receive_json_from()
        await second.receive_json_from()
        await first.send_json_to({"type": "say", "text": "three"})
        error = await first.receive_json_from()
        assert error["code"] == "rate_limited"
        assert error["retry_after"] >= 1
        await first.disconnect()
        await second.disconnect()

    run(scenario)
    assert sorted(RoomMessage.objects.values_list("text", flat=True)) == ["one", "two"]


def test_a_resent_line_with_the_same_nonce_is_said_once(work: Any, bob: User) -> None:
    async def scenario() -> None:
        comm = socket(work_path(work), bob)
        await join(comm)
        await comm.send_json_to({"type": "say", "text": "once", "nonce": "k-1"})
        first = await comm.receive_json_from()
        assert (await comm.receive_json_from())["type"] == "message"
        await comm.send_json_to({"type": "say", "text": "once", "nonce": "k-1"})
        again = await comm.receive_json_from()
        assert again == first
        assert await comm.receive_nothing()
        await comm.disconnect()

    run(scenario)
    assert RoomMessage.objects.count() == 1


# --- moderation ----------------------------------------------------------------------


def test_slow_mode_spaces_a_members_lines_but_not_the_owners(work: Any, bob: User,
                                                            rita: User) -> None:
    Room.objects.create(kind="work", work=work, owner=rita, slow_mode_seconds=60)

    async def scenario() -> None:
        bobs, owner = socket(work_path(work), bob), socket(work_path(work), rita)
        await join(bobs)
        await join(owner)
        await bobs.send_json_to({"type": "say", "text": "first"})
        assert (await bobs.receive_json_from())["type"] == "ack"
        await bobs.receive_json_from()
        await owner.receive_json_from()
        await bobs.send_json_to({"type": "say", "text": "second"})
        error = await bobs.receive_json_from()
        assert error["code"] == "slow_mode"
        assert await owner.receive_nothing()
        for text in ("owner one", "owner two"):
            await owner.send_json_to({"type": "say", "text": text})
            assert (await owner.receive_json_from())["type"] == "ack"
            await owner.receive_json_from()
        await bobs.disconnect()
        await owner.disconnect()

    run(scenario)
    assert list(RoomMessage.objects.order_by("id").values_list("text", flat=True)) == [
        "first", "owner one", "owner two"]


def test_a_muted_member_reads_but_cannot_speak(work: Any, bob: User, carol: User,
                                              rita: User) -> None:
    async def scenario() -> None:
        owner, bobs, carols = (socket(work_path(work), who) for who in (rita, bob, carol))
        for comm in (owner, bobs, carols):
            await join(comm)
        await owner.send_json_to({"type": "mute", "member": "bob", "minutes": 10,
                                  "reason": "spam"})
        muted = await bobs.receive_json_from()
        assert muted["type"] == "muted"
        notice = await carols.receive_json_from()
        assert (notice["type"], notice["action"], notice["member"], notice["by"]) == (
            "moderation", "mute", "bob", "rita")
        await bobs.send_json_to({"type": "say", "text": "let me talk"})
        assert (await bobs.receive_json_from())["code"] == "muted"
        await carols.send_json_to({"type": "say", "text": "still here"})
        await carols.receive_json_from()
        assert (await bobs.receive_json_from())["message"]["text"] == "still here"
        for comm in (owner, bobs, carols):
            await comm.disconnect()

    run(scenario)
    assert list(RoomMessage.objects.values_list("text", flat=True)) == ["still here"]
    event = AuditEvent.objects.get(action="room_mute")
    assert (event.actor.username, event.data["member"], event.data["minutes"]) == (
        "rita", "bob", 10)


def test_a_kick_closes_the_members_sockets_and_bars_them(work: Any, bob: User,
                                                        rita: User) -> None:
    async def scenario() -> None:
        owner, bobs = socket(work_path(work), rita), socket(work_path(work), bob)
        await join(owner)
        await join(bobs)
        await owner.send_json_to({"type": "kick", "member": "bob", "minutes": 60})
        assert (await bobs.receive_json_from())["code"] == "kicked"
        assert await closed_with(bobs) == 4408
        frame, code = await refused(socket(work_path(work), bob))
        assert (frame["code"], code) == ("kicked", 4403)
        await owner.disconnect()

    run(scenario)
    sanction = RoomSanction.objects.get()
    assert (sanction.kind, sanction.member.username, sanction.by.username) == ("kick", "bob",
                                                                               "rita")


def test_members_cannot_moderate_and_moderators_cannot_be_sanctioned(
        work: Any, bob: User, carol: User, rita: User, admin_user: User) -> None:
    async def scenario() -> None:
        bobs = socket(work_path(work), bob)
        await join(bobs)
        await bobs.send_json_to({"type": "kick", "member": "carol", "minutes": 60})
        assert (await bobs.receive_json_from())["code"] == "permission_denied"
        await bobs.send_json_to({"type": "rules", "slow_mode_seconds": 3600})
        assert (await bobs.receive_json_from())["code"] == "permission_denied"
        staff = socket(work_path(work), admin_user)
        assert (await join(staff))["you"]["moderator"] is True
        await staff.send_json_to({"type": "mute", "member": "rita", "minutes": 5})
        assert (await staff.receive_json_from())["code"] == "moderator"
        await staff.send_json_to({"type": "mute", "member": "carol", "minutes": 0})
        assert (await staff.receive_json_from())["code"] == "invalid"
        await bobs.disconnect()
        await staff.disconnect()

    run(scenario)
    assert RoomSanction.objects.count() == 0
    assert Room.objects.get().slow_mode_seconds == 0


def test_lines_stay_in_their_own_room(work: Any, bob: User, carol: User) -> None:
    async def scenario() -> None:
        here, elsewhere = socket(work_path(work), bob), socket("/ws/rooms/member/rita/", carol)
        await join(here)
        await join(elsewhere)
        await here.send_json_to({"type": "say", "text": "only here"})
        await here.receive_json_from()
        await here.receive_json_from()
        assert await elsewhere.receive_nothing()
        await here.disconnect()
        await elsewhere.disconnect()

    run(scenario)


# --- fan-out: one delivery per room per process ----------------------------------------


@pytest.mark.parametrize("layer_kind", ["configured", "in_memory"])
def test_a_room_event_reaches_a_process_once_whatever_its_sockets(
        work: Any, bob: User, carol: User, settings: Any, monkeypatch: pytest.MonkeyPatch,
        layer_kind: str) -> None:
    """Eight sockets of one room in one process: the process joins the room's group once
    and takes each line from the channel layer once, then hands the same text to all
    eight; the last socket to leave ends the membership. The configured layer (Redis
    Pub/Sub when REDIS_URL is set) and the embedded demo's in-memory layer alike."""
    from channels.layers import get_channel_layer

    from exchange.rooms import fanout

    if layer_kind == "in_memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    group = Room.objects.create(kind="work", work=work, owner=work.owner).group
    adds: list[str] = []
    layer = get_channel_layer()
    real_add = layer.group_add

    async def counting_add(name: str, channel: str) -> None:
        adds.append(name)
        await real_add(name, channel)

    monkeypatch.setattr(layer, "group_add", counting_add)

    async def scenario() -> None:
        sockets = [socket(work_path(work), who) for who in (bob, carol) for _ in range(4)]
        for each in sockets:
            await join(each)
        hub = fanout.hub()
        assert hub is not None
        assert hub.subscribed == {group}
        assert len(hub.rooms[group]) == 8
        before = hub.events
        for n in range(3):
            await sockets[0].send_json_to({"type": "say", "text": f"line {n}", "nonce": f"n{n}"})
            assert (await sockets[0].receive_json_from())["type"] == "ack"
            frames = [await each.receive_json_from() for each in sockets]
            assert {frame["message"]["text"] for frame in frames} == {f"line {n}"}
        assert hub.events - before == 3  # not 24
        for each in sockets:
            await each.disconnect()
        assert hub.rooms == {}
        assert hub.subscribed == set()

    run(scenario)
    assert adds == [group]


@pytest.mark.parametrize(("stall_seconds", "sends_per_turn"), [(None, None), (0.0, 1)])
def test_a_socket_that_does_not_read_holds_up_only_itself(
        work: Any, bob: User, carol: User, monkeypatch: pytest.MonkeyPatch,
        stall_seconds: float | None, sends_per_turn: int | None) -> None:
    """A reader whose send never completes (its buffer full) keeps its own lines waiting;
    the rest of the room still gets every line, in order. Also with the sender yielding
    after every socket and the watchdog firing while it yields (it looks again)."""
    import asyncio

    from exchange.rooms import fanout

    if stall_seconds is not None:
        monkeypatch.setattr(fanout, "STALL_SECONDS", stall_seconds)
        monkeypatch.setattr(fanout, "SENDS_PER_TURN", sends_per_turn)

    async def scenario() -> None:
        talker, stuck, reader = (socket(work_path(work), carol), socket(work_path(work), bob),
                                 socket(work_path(work), carol))
        for each in (talker, stuck, reader):
            await join(each)
        hub = fanout.hub()
        assert hub is not None
        consumers = list(next(iter(hub.rooms.values())))
        never = asyncio.Event()

        async def blocked_send(**_: Any) -> None:
            await never.wait()

        consumers[1].send = blocked_send  # the second to join: Bob's socket
        for n in range(3):
            await talker.send_json_to({"type": "say", "text": f"line {n}"})
            assert (await talker.receive_json_from())["type"] == "ack"
            assert (await talker.receive_json_from())["message"]["text"] == f"line {n}"
            assert (await reader.receive_json_from())["message"]["text"] == f"line {n}"
        assert await stuck.receive_nothing()
        for each in (talker, reader):
            await each.disconnect()
        await stuck.disconnect(timeout=1)

    run(scenario)
