"""The platform's peer registry and holdings index, in either store: the database (the
embedded default) and the live index in Redis (where REDIS_URL is set), whose durable
record in the database the flush brings up to date."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.utils import timezone

from exchange.peers.models import Holding, Peer

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "redis"], autouse=True)
def index_store(request) -> str:
    if request.param == "redis":
        request.getfixturevalue("live_index")
    return request.param


def _recorded(index_store: str) -> None:
    """The durable record brought up to date (the live index's flush)."""
    if index_store == "redis":
        from exchange.peers.flush import index_flush

        index_flush()


def _bits(count: int, held: set[int]) -> str:
    raw = bytearray((count + 7) // 8)
    for index in held:
        raw[index // 8] |= 0x80 >> (index % 8)
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def work(rita, make_work):
    from tests.conftest import png_bytes

    return make_work(rita, data=png_bytes(900, 900))


def _announce(client, device, work=None, held=None, **extra):
    holdings = []
    if work is not None:
        count = work.package.piece_count
        holdings = [{"work": str(work.pk), "bitfield": _bits(count, held or set(range(count)))}]
    body = {"device": device.device_id, "port": 7001, "holdings": holdings, **extra}
    return client.post("/api/v1/peers/announce/", body, format="json", REMOTE_ADDR="127.0.0.1")


def test_a_peer_announces_its_endpoint_and_holdings(carol, work, device_of, api,
                                                    index_store) -> None:
    _, device = device_of(carol)
    response = _announce(api(carol), device, work)
    assert response.status_code == 200, response.json()
    assert response.json()["url"] == "http://127.0.0.1:7001"
    _recorded(index_store)
    holding = Holding.objects.get()
    assert holding.have_count == work.package.piece_count
    assert bytes(holding.bitfield) == base64.b64decode(_bits(holding.have_count,
                                                             set(range(holding.have_count))))
    assert Peer.objects.get().endpoint == "http://127.0.0.1:7001"
    again = _announce(api(carol), device, work)  # the same announce twice: same state
    assert again.status_code == 200
    _recorded(index_store)
    assert Holding.objects.count() == 1


def test_sources_list_live_peers_most_pieces_first(carol, rob, bob, work, device_of,
                                                   api) -> None:
    count = work.package.piece_count
    _, partial = device_of(carol)
    _, full = device_of(rob)
    _announce(api(carol), partial, work, held={0})
    _announce(api(rob), full, work)
    body = api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()
    assert [s["peer_id"] for s in body["results"]] == [full.device_id, partial.device_id]
    assert body["results"][0]["have"] == count
    assert body["results"][1]["bitfield"] == _bits(count, {0})
    assert body["web_seeds"] == []


def test_a_silent_peer_drops_out_and_a_heartbeat_brings_it_back(carol, bob, work, device_of,
                                                               api, index_store,
                                                               request) -> None:
    _, device = device_of(carol)
    _announce(api(carol), device, work)
    if index_store == "redis":  # its key expired (a real expiry: tests/index/)
        request.getfixturevalue("live_index").delete(f"pmi:p:{device.device_id}")
    else:
        Peer.objects.update(last_seen_at=timezone.now() - dt.timedelta(seconds=91))
    assert api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()["count"] == 0
    beat = api(carol).post("/api/v1/peers/heartbeat/", {"device": device.device_id},
                           format="json")
    if index_store == "redis":  # gone from the live index: it must announce again
        assert beat.status_code == 409
        assert beat.json()["error"]["code"] == "not_announced"
        _announce(api(carol), device, work)
    else:
        assert beat.status_code == 200
    assert api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()["count"] == 1


def test_a_revoked_device_is_not_a_source(carol, bob, work, device_of, api,
                                          django_capture_on_commit_callbacks) -> None:
    from exchange.licensing.services import device_revoke

    _, device = device_of(carol)
    _announce(api(carol), device, work)
    with django_capture_on_commit_callbacks(execute=True):
        device_revoke(device=device, actor=carol)
    assert api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()["count"] == 0
    assert _announce(api(carol), device, work).status_code == 409


def test_a_full_announce_replaces_older_holdings(carol, rita, work, make_work, device_of,
                                                 api, index_store) -> None:
    other = make_work(rita, title="Other")
    _, device = device_of(carol)
    _announce(api(carol), device, work)
    _announce(api(carol), device, other)
    _recorded(index_store)
    assert Holding.objects.count() == 2
    _announce(api(carol), device, other, replace=True)
    _recorded(index_store)
    assert list(Holding.objects.values_list("work_id", flat=True)) == [other.pk]
    sources = api(carol).get(f"/api/v1/works/{work.pk}/sources/").json()
    assert sources["count"] == 0


def test_sources_are_paginated(bob, work, device_of, api) -> None:
    from exchange.accounts.models import Role, User

    for index in range(3):
        peer_user = User.objects.create_user(f"p{index}", password="x", role=Role.BUYER)
        _, device = device_of(peer_user)
        _announce(api(peer_user), device, work)
    page = api(bob).get(f"/api/v1/works/{work.pk}/sources/", {"page_size": 2}).json()
    assert page["count"] == 3
    assert len(page["results"]) == 2
    assert page["next"]


class TestBadAnnouncements:
    def test_another_users_device(self, carol, bob, work, device_of, api, index_store) -> None:
        _, device = device_of(bob)
        response = _announce(api(carol), device, work)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_device"
        _recorded(index_store)
        assert not Peer.objects.exists()

    @pytest.mark.parametrize("bitfield", ["***", base64.b64encode(b"\xff" * 99).decode()])
    def test_a_malformed_bitfield(self, carol, work, device_of, api, bitfield,
                                  index_store) -> None:
        _, device = device_of(carol)
        body = {"device": device.device_id, "port": 7001,
                "holdings": [{"work": str(work.pk), "bitfield": bitfield}]}
        response = api(carol).post("/api/v1/peers/announce/", body, format="json",
                                   REMOTE_ADDR="127.0.0.1")
        assert response.status_code == 400
        assert "holdings[0].bitfield" in response.json()["error"]["fields"]
        _recorded(index_store)
        assert not Peer.objects.exists()

    def test_bits_past_the_last_piece(self, carol, work, device_of, api) -> None:
        _, device = device_of(carol)
        count = work.package.piece_count
        raw = bytearray((count + 7) // 8)
        raw[-1] = 0xFF
        if count % 8 == 0:
            pytest.skip("no spare bits at this piece count")
        body = {"device": device.device_id, "port": 7001, "holdings": [
            {"work": str(work.pk), "bitfield": base64.b64encode(bytes(raw)).decode()}]}
        response = api(carol).post("/api/v1/peers/announce/", body, format="json",
                                   REMOTE_ADDR="127.0.0.1")
        assert response.status_code == 400

    def test_an_unknown_work(self, carol, device_of, api) -> None:
        _, device = device_of(carol)
        body = {"device": device.device_id, "port": 7001, "holdings": [
            {"work": "00000000-0000-0000-0000-000000000000", "bitfield": "AA=="}]}
        response = api(carol).post("/api/v1/peers/announce/", body, format="json",
                                   REMOTE_ADDR="127.0.0.1")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_work"

    def test_a_host_that_is_not_the_senders(self, carol, device_of, api) -> None:
        _, device = device_of(carol)
        response = _announce(api(carol), device, host="203.0.113.9")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "host_mismatch"

    @pytest.mark.parametrize("port", [0, 70000, "x"])
    def test_a_bad_port(self, carol, device_of, api, port) -> None:
        _, device = device_of(carol)
        assert _announce(api(carol), device, port=port).status_code == 400

    def test_a_heartbeat_before_announcing(self, carol, device_of, api) -> None:
        _, device = device_of(carol)
        response = api(carol).post("/api/v1/peers/heartbeat/", {"device": device.device_id},
                                   format="json")
        assert response.status_code == 409


class TestWebSeeds:
    def test_the_owner_adds_a_web_seed_and_buyers_see_it(self, rita, bob, work, api) -> None:
        response = api(rita).post(f"/api/v1/works/{work.pk}/web-seeds/",
                                  {"url": "https://cdn.example.test/harbour.pmc"}, format="json")
        assert response.status_code == 201
        sources = api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()
        assert sources["web_seeds"] == ["https://cdn.example.test/harbour.pmc"]

    def test_nobody_else_adds_or_removes_one(self, rita, rob, work, api) -> None:
        assert api(rob).post(f"/api/v1/works/{work.pk}/web-seeds/",
                             {"url": "https://evil.example.test/x"},
                             format="json").status_code == 403
        seed = api(rita).post(f"/api/v1/works/{work.pk}/web-seeds/",
                              {"url": "https://cdn.example.test/x"}, format="json").json()
        assert api(rob).delete(
            f"/api/v1/works/{work.pk}/web-seeds/{seed['id']}/").status_code == 403
        assert api(rita).delete(
            f"/api/v1/works/{work.pk}/web-seeds/{seed['id']}/").status_code == 204

    def test_not_a_url(self, rita, work, api) -> None:
        response = api(rita).post(f"/api/v1/works/{work.pk}/web-seeds/",
                                  {"url": "ftp://x"}, format="json")
        assert response.status_code == 400


def test_while_redis_is_away_the_platform_keeps_the_index_in_the_database(
        live_index, settings, carol, bob, work, device_of, api) -> None:
    """Agents fall back to the platform's API when the fast path answers 503; the
    platform then answers from the durable record instead of failing too."""
    from tests.support.processes import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    _, device = device_of(carol)
    assert _announce(api(carol), device, work).status_code == 200
    assert Peer.objects.get().endpoint == "http://127.0.0.1:7001"
    beat = api(carol).post("/api/v1/peers/heartbeat/", {"device": device.device_id},
                           format="json")
    assert beat.status_code == 200
    sources = api(bob).get(f"/api/v1/works/{work.pk}/sources/").json()
    assert [s["peer_id"] for s in sources["results"]] == [device.device_id]
