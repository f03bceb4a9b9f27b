"""The agent's fast path to the peer index, and its fall-back to the platform.

Two real HTTP servers on loopback (http.server in a thread each; the client is httpx,
synchronous): one plays the platform (the credential endpoint and the present peers
API), one the index. Each answers from a table a test fills and records what it was
asked, so the tests check which service the agent talked to and with what. The agent's
clock is a test clock that starts at the real time (the servers' ``Date`` headers are
real) and is moved forward by hand: no test sleeps.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent import workflow
from agent.config import AgentConfig, AgentHome
from agent.context import Agent
from agent.daemon import Daemon, ServeOptions
from agent.index_client import IndexClient
from agent.platform import PlatformClient, PlatformError
from licensing.core import DeviceKeys

DEVICE = "dev-bob-laptop"
WORK = "0b7e5a8e-3c1d-4f5e-9a2b-6c7d8e9f0a1b"
CREDENTIAL = "/api/v1/peers/index-credential/"
LIFE = 3600  # seconds, as the platform's default PEERMARK_INDEX_CREDENTIAL_SECONDS


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


Answer = Reply | Callable[[Seen], Reply]


def error(status: int, code: str, **headers: str) -> Reply:
    """An error in the platform's (and the index's) one error shape."""
    return Reply(status, {"error": {"code": code, "message": f"{code}.", "fields": {}}},
                 headers)


class Loopback:
    """A real HTTP/1.1 server on 127.0.0.1 answering ``(method, path)`` from a table.
    Several answers for one route are given in turn, the last one repeating; a route
    nobody set answers 404 ``not_found``."""

    def __init__(self, port: int = 0) -> None:
        self.answers: dict[tuple[str, str], list[Answer]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw) if raw else None)
                reply = loopback.reply(seen)
                content = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    def reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queue = self.answers.get((seen.method, seen.path))
            if not queue:
                return error(404, "not_found")
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(seen) if callable(answer) else answer

    def calls(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Credentials:
    """The platform's credential endpoint: a new token each time, valid LIFE seconds by
    the real clock (the same clock as the ``Date`` header http.server sends)."""

    def __init__(self, index_url: str) -> None:
        self.index_url = index_url
        self.issued = 0

    def __call__(self, seen: Seen) -> Reply:
        self.issued += 1
        expires = datetime.now(UTC) + timedelta(seconds=LIFE)
        return Reply(201, {"token": f"pmi1.token-{self.issued}",
                           "expires_at": expires.isoformat().replace("+00:00", "Z"),
                           "index_url": self.index_url, "interval": 60})


PLATFORM_SOURCE = {"peer_id": "dev-rita", "url": "http://10.0.0.5:7000", "bitfield": "/w==",
                   "have": 7, "last_seen_at": "2026-12-03T22:00:00Z"}


@pytest.fixture
def index() -> Iterator[Loopback]:
    server = Loopback()
    server.on("POST", "/index/v1/announce",
              lambda seen: Reply(200, {"peer_id": DEVICE, "url": "http://127.0.0.1:7000",
                                       "interval": 60,
                                       "holdings": len(seen.body["holdings"])}))
    server.on("POST", "/index/v1/heartbeat", Reply(200, {"interval": 60}))
    server.on("GET", f"/index/v1/works/{WORK}/sources", Reply(200, {
        "sources": [{"peer_id": "dev-carol", "url": "http://192.0.2.7:7000",
                     "bitfield": "/4A=", "have": 9, "last_seen": 1_700_000_000}],
        "web_seeds": ["https://seed.example/w.pmc"]}))
    yield server
    server.close()


@pytest.fixture
def platform(index: Loopback) -> Iterator[Loopback]:
    server = Loopback()
    server.on("POST", CREDENTIAL, Credentials(index.url))
    peer = {"peer_id": DEVICE, "url": "http://127.0.0.1:7000",
            "last_seen_at": "2026-12-03T22:00:00Z"}
    server.on("POST", "/api/v1/peers/announce/", Reply(200, peer))
    server.on("POST", "/api/v1/peers/heartbeat/", Reply(200, peer))
    server.on("GET", f"/api/v1/works/{WORK}/sources/", Reply(200, {
        "count": 1, "next": None, "previous": None, "results": [PLATFORM_SOURCE],
        "web_seeds": []}))
    yield server
    server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def client(platform: Loopback, clock: Clock) -> Iterator[IndexClient]:
    api = PlatformClient(platform.url, "bob-token")
    # rng 1.0: every pause stretched by the whole jitter, so its end is known exactly.
    index_client = IndexClient(api, device_id=DEVICE, clock=clock, rng=lambda: 1.0)
    yield index_client
    index_client.close()
    api.close()


HOLDING = {"work": WORK, "bitfield": "/4A="}


def platform_peer_calls(platform: Loopback) -> list[str]:
    return [c for c in platform.calls() if c != f"POST {CREDENTIAL}"]


# --- the fast path ---------------------------------------------------------------------


def test_where_the_platform_offers_an_index_the_three_calls_go_to_it(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    client.announce(port=7000, holdings=[HOLDING], replace=True)
    assert client.heartbeat() == {"interval": 60}
    found = client.sources(WORK)

    assert platform.calls() == [f"POST {CREDENTIAL}"]  # one credential for all three
    assert platform.seen[0].body == {"device": DEVICE}
    assert platform.seen[0].headers["authorization"] == "Bearer bob-token"
    assert index.calls() == ["POST /index/v1/announce", "POST /index/v1/heartbeat",
                             f"GET /index/v1/works/{WORK}/sources"]
    assert {s.bearer for s in index.seen} == {"pmi1.token-1"}
    announce = index.seen[0].body
    assert announce["replace"] is True
    assert announce["port"] == 7000
    assert announce["holdings"] == [HOLDING]
    assert "device" not in announce  # the credential names the device
    assert index.seen[2].query["n"] == ["50"]
    # The platform API's shape; 1_700_000_000 s after the epoch is 2023-11-14 22:13:20 UTC.
    assert found == {"results": [{"peer_id": "dev-carol", "url": "http://192.0.2.7:7000",
                                  "bitfield": "/4A=", "have": 9,
                                  "last_seen_at": "2023-11-14T22:13:20Z"}],
                     "web_seeds": ["https://seed.example/w.pmc"]}
    assert client.routes == {("announce", "index"): 1, ("heartbeat", "index"): 1,
                             ("sources", "index"): 1}


def test_get_reads_sources_from_the_index_into_the_downloaders_sources(
        platform: Loopback, index: Loopback, tmp_path: Path) -> None:
    api = PlatformClient(platform.url, "bob-token")
    agent = SimpleNamespace(platform=api, device=SimpleNamespace(device_id=DEVICE),
                            home=AgentHome(tmp_path))
    try:
        sources, seeds = workflow.platform_sources(agent, WORK, 9)  # type: ignore[arg-type]
    finally:
        api.close()
    assert [(s.peer_id, s.url) for s in sources] == [("dev-carol", "http://192.0.2.7:7000")]
    # "/4A=": 111111 111000 000000, that is 0xff 0x80 (all 9 pieces).
    assert sources[0].bitfield == b"\xff\x80"
    assert seeds == ["https://seed.example/w.pmc"]
    assert index.calls() == [f"GET /index/v1/works/{WORK}/sources"]


def test_a_long_list_of_holdings_goes_in_batches_of_a_thousand_the_first_replacing(
        client: IndexClient, index: Loopback) -> None:
    holdings = [{"work": f"work-{n}", "bitfield": "gA=="} for n in range(1001)]
    client.announce(port=7000, holdings=holdings, replace=True)
    sent = [s.body for s in index.seen]
    assert [len(b["holdings"]) for b in sent] == [1000, 1]
    assert [b["replace"] for b in sent] == [True, False]
    assert [h["work"] for b in sent for h in b["holdings"]] == [h["work"] for h in holdings]


# --- the credential --------------------------------------------------------------------


def test_the_credential_is_renewed_at_half_its_life(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    client.heartbeat()
    clock.now += LIFE / 2 - 60
    client.heartbeat()
    clock.now += 120  # past half its life (the Date header is whole seconds: margin 60 s)
    client.heartbeat()
    assert [s.bearer for s in index.seen] == ["pmi1.token-1", "pmi1.token-1", "pmi1.token-2"]
    assert platform.calls() == [f"POST {CREDENTIAL}"] * 2


@pytest.fixture
def bob_api(platform: Loopback) -> Iterator[PlatformClient]:
    client = PlatformClient(platform.url, "bob-token")
    yield client
    client.close()


def kept_client(api: PlatformClient, clock: Clock, kept: Path) -> IndexClient:
    """A client that keeps its credential in ``kept``, as the daemon's and each get's."""
    return IndexClient(api, device_id=DEVICE, clock=clock, credential_file=kept)


def test_a_kept_credential_serves_the_next_run_without_asking_the_platform(
        bob_api: PlatformClient, platform: Loopback, index: Loopback, clock: Clock,
        tmp_path: Path) -> None:
    kept = tmp_path / "index-credential.json"
    with kept_client(bob_api, clock, kept) as first:
        first.heartbeat()
    assert kept.stat().st_mode & 0o777 == 0o600
    with kept_client(bob_api, clock, kept) as second:
        second.sources(WORK)  # as a ``get`` does while the daemon runs
    # kept past half its life (by the wall clock, which kept times are read against):
    # the next run renews it
    data = json.loads(kept.read_bytes())
    kept.write_text(json.dumps({**data, "saved_at": data["saved_at"] - LIFE / 2 - 60}))
    with kept_client(bob_api, clock, kept) as third:
        third.heartbeat()
    assert [s.bearer for s in index.seen] == ["pmi1.token-1", "pmi1.token-1", "pmi1.token-2"]
    assert platform.calls() == [f"POST {CREDENTIAL}"] * 2


@pytest.mark.parametrize("kept", [
    b"not json", b"[]", b'{"device": "dev-other", "token": "pmi1.x", "index_url": '
    b'"http://127.0.0.1:1", "saved_at": 0, "refresh_in": 1, "expires_in": 2}',
    b'{"device": "dev-bob-laptop", "token": "pmi1.x", "index_url": "file:///etc/passwd", '
    b'"saved_at": 0, "refresh_in": 1, "expires_in": 2}',
], ids=["not-json", "not-an-object", "another-device", "not-http"])
def test_a_kept_credential_that_is_unreadable_or_not_this_devices_is_not_used(
        bob_api: PlatformClient, platform: Loopback, index: Loopback, clock: Clock,
        tmp_path: Path, kept: bytes) -> None:
    path = tmp_path / "index-credential.json"
    path.write_bytes(kept.replace(b'"saved_at": 0', b'"saved_at": %d' % time.time()))
    with kept_client(bob_api, clock, path) as client:
        client.heartbeat()
    assert platform.calls() == [f"POST {CREDENTIAL}"]
    assert [s.bearer for s in index.seen] == ["pmi1.token-1"]


def test_a_kept_credential_the_index_refuses_is_thrown_away(
        bob_api: PlatformClient, index: Loopback, clock: Clock, tmp_path: Path) -> None:
    kept = tmp_path / "index-credential.json"
    with kept_client(bob_api, clock, kept) as client:
        client.heartbeat()
        assert kept.exists()
        index.on("POST", "/index/v1/heartbeat", error(401, "credential_revoked"))
        client.heartbeat()  # answered by the platform instead
    assert not kept.exists()


def test_a_credential_is_timed_on_the_platforms_clock_not_a_skewed_local_one(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    clock.now += 2 * LIFE  # the agent's clock is two hours fast
    client.heartbeat()
    client.heartbeat()
    assert [s.bearer for s in index.seen] == ["pmi1.token-1", "pmi1.token-1"]
    assert platform.calls() == [f"POST {CREDENTIAL}"]


def test_when_renewal_fails_the_held_credential_serves_until_it_expires(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    client.heartbeat()
    platform.on("POST", CREDENTIAL, error(503, "unavailable", **{"Retry-After": "30"}))
    clock.now += LIFE / 2 + 60
    client.heartbeat()
    assert [s.bearer for s in index.seen] == ["pmi1.token-1", "pmi1.token-1"]
    clock.now += LIFE / 2  # past its expiry now, and the platform still gives none
    client.heartbeat()
    assert len(index.seen) == 2
    assert platform_peer_calls(platform) == ["POST /api/v1/peers/heartbeat/"]


def test_credential_expired_fetches_a_fresh_one_and_the_call_is_made_again(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    index.on("POST", "/index/v1/heartbeat", error(401, "credential_expired"),
             Reply(200, {"interval": 60}))
    assert client.heartbeat() == {"interval": 60}
    assert [s.bearer for s in index.seen] == ["pmi1.token-1", "pmi1.token-2"]
    assert platform_peer_calls(platform) == []


def test_a_revoked_credential_leaves_the_fast_path_and_the_platforms_refusal_surfaces(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    index.on("POST", "/index/v1/heartbeat", error(401, "credential_revoked"))
    platform.on("POST", "/api/v1/peers/heartbeat/", error(403, "device_revoked"))
    with pytest.raises(PlatformError) as refused:
        client.heartbeat()
    assert (refused.value.status, refused.value.code) == (403, "device_revoked")
    clock.now += 600
    with pytest.raises(PlatformError):
        client.heartbeat()
    assert len(index.seen) == 1  # the index is not asked again
    assert platform.calls() == [f"POST {CREDENTIAL}", "POST /api/v1/peers/heartbeat/",
                                "POST /api/v1/peers/heartbeat/"]


def test_a_credential_naming_no_http_index_is_not_used(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    platform.on("POST", CREDENTIAL, Reply(201, {
        "token": "pmi1.x", "expires_at": "2999-01-01T00:00:00Z",
        "index_url": "file:///etc/passwd", "interval": 60}))
    client.heartbeat()
    assert index.seen == []
    assert platform_peer_calls(platform) == ["POST /api/v1/peers/heartbeat/"]


# --- falling back --------------------------------------------------------------------


@pytest.mark.parametrize("refusal", [error(404, "index_not_offered"), error(404, "not_found")],
                         ids=["no index offered", "a platform without the endpoint"])
def test_without_an_index_the_platforms_api_answers_and_is_asked_again_only_later(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock,
        refusal: Reply) -> None:
    platform.on("POST", CREDENTIAL, refusal)
    client.announce(port=7000, holdings=[HOLDING], replace=True)
    assert client.heartbeat() is not None
    assert client.sources(WORK)["results"] == [PLATFORM_SOURCE]
    assert platform.calls() == [f"POST {CREDENTIAL}", "POST /api/v1/peers/announce/",
                                "POST /api/v1/peers/heartbeat/",
                                f"GET /api/v1/works/{WORK}/sources/"]
    assert platform.seen[1].body["device"] == DEVICE
    assert platform.seen[1].body["replace"] is True
    assert index.seen == []
    # Ten minutes on, the platform is asked again (and may offer one by now).
    platform.on("POST", CREDENTIAL, Credentials(index.url))
    clock.now += 601
    client.heartbeat()
    assert index.calls() == ["POST /index/v1/heartbeat"]


def test_an_unreachable_index_is_left_alone_for_a_while_and_then_tried_again(
        client: IndexClient, platform: Loopback, clock: Clock) -> None:
    port = free_port()
    platform.on("POST", CREDENTIAL, Credentials(f"http://127.0.0.1:{port}"))
    client.heartbeat()
    client.heartbeat()
    # First pause 15 s, stretched by the whole jitter (rng 1.0): 18.75 s.
    clock.now += 18
    client.heartbeat()
    assert platform_peer_calls(platform) == ["POST /api/v1/peers/heartbeat/"] * 3
    assert client.routes == {("heartbeat", "platform"): 3}
    back = Loopback(port)  # the index is back
    try:
        back.on("POST", "/index/v1/heartbeat", Reply(200, {"interval": 60}))
        clock.now += 1
        assert client.heartbeat() == {"interval": 60}
        assert back.calls() == ["POST /index/v1/heartbeat"]
    finally:
        back.close()
    assert platform.calls().count(f"POST {CREDENTIAL}") == 1


def test_an_index_answering_500_is_replaced_by_the_platform(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    index.on("GET", f"/index/v1/works/{WORK}/sources", error(500, "server_error"))
    assert client.sources(WORK)["results"] == [PLATFORM_SOURCE]
    assert index.calls() == [f"GET /index/v1/works/{WORK}/sources"]
    assert client.routes == {("sources", "platform"): 1}


def test_a_malformed_sources_answer_is_replaced_by_the_platforms(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    index.on("GET", f"/index/v1/works/{WORK}/sources",
             Reply(200, {"sources": [{"peer_id": "dev-carol"}], "web_seeds": []}))
    assert client.sources(WORK)["results"] == [PLATFORM_SOURCE]


def test_an_unknown_work_is_judged_by_the_platform(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    index.on("GET", f"/index/v1/works/{WORK}/sources", error(404, "unknown_work"))
    platform.on("GET", f"/api/v1/works/{WORK}/sources/", error(404, "not_found"))
    with pytest.raises(PlatformError) as refused:
        client.sources(WORK)
    assert refused.value.code == "not_found"


# --- Retry-After -----------------------------------------------------------------------


def test_a_rate_limited_agent_skips_heartbeats_for_as_long_as_the_index_asks(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    index.on("POST", "/index/v1/heartbeat",
             error(429, "rate_limited", **{"Retry-After": "30"}),
             Reply(200, {"interval": 60}))
    assert client.heartbeat() is None
    clock.now += 37  # 30 s stretched by the whole jitter is 37.5 s
    assert client.heartbeat() is None
    assert len(index.seen) == 1
    # Other calls are not held back by the heartbeat's pause.
    client.announce(port=7000, holdings=[HOLDING], replace=False)
    clock.now += 1
    assert client.heartbeat() == {"interval": 60}
    assert index.calls() == ["POST /index/v1/heartbeat", "POST /index/v1/announce",
                             "POST /index/v1/heartbeat"]
    assert platform_peer_calls(platform) == []  # a skipped beat asks no one
    assert client.routes[("heartbeat", "skipped")] == 2


def test_while_the_index_is_unavailable_heartbeats_go_to_the_platform(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    """The index's Redis is away: the platform keeps the device live in its database,
    whose sources would otherwise drop it after the peer timeout."""
    index.on("POST", "/index/v1/heartbeat",
             error(503, "index_unavailable", **{"Retry-After": "30"}),
             Reply(200, {"interval": 60}))
    assert client.heartbeat() is not None
    clock.now += 37
    assert client.heartbeat() is not None
    assert index.calls() == ["POST /index/v1/heartbeat"]  # asked again only after the wait
    assert platform_peer_calls(platform) == ["POST /api/v1/peers/heartbeat/"] * 2
    clock.now += 1
    assert client.heartbeat() == {"interval": 60}
    assert client.routes[("heartbeat", "platform")] == 2


def test_while_the_index_asks_to_wait_announces_and_lookups_go_to_the_platform(
        client: IndexClient, platform: Loopback, index: Loopback, clock: Clock) -> None:
    index.on("POST", "/index/v1/announce", error(429, "rate_limited", **{"Retry-After": "10"}))
    index.on("GET", f"/index/v1/works/{WORK}/sources",
             error(503, "index_unavailable", **{"Retry-After": "10"}))
    client.announce(port=7000, holdings=[HOLDING], replace=False)
    client.announce(port=7000, holdings=[HOLDING], replace=False)
    assert client.sources(WORK)["results"] == [PLATFORM_SOURCE]
    assert client.sources(WORK)["results"] == [PLATFORM_SOURCE]
    assert index.calls() == ["POST /index/v1/announce", f"GET /index/v1/works/{WORK}/sources"]
    assert platform_peer_calls(platform) == [
        "POST /api/v1/peers/announce/", "POST /api/v1/peers/announce/",
        f"GET /api/v1/works/{WORK}/sources/", f"GET /api/v1/works/{WORK}/sources/"]
    clock.now += 13  # past 12.5 s
    index.on("POST", "/index/v1/announce", Reply(200, {"interval": 60}))
    client.announce(port=7000, holdings=[HOLDING], replace=False)
    assert index.calls()[-1] == "POST /index/v1/announce"


def test_a_retry_after_is_obeyed_only_up_to_five_minutes(
        client: IndexClient, index: Loopback, clock: Clock) -> None:
    index.on("POST", "/index/v1/heartbeat",
             error(429, "rate_limited", **{"Retry-After": "86400"}),
             Reply(200, {"interval": 60}))
    assert client.heartbeat() is None
    clock.now += 374  # 300 s stretched by the whole jitter is 375 s
    assert client.heartbeat() is None
    clock.now += 2
    assert client.heartbeat() == {"interval": 60}


def test_a_retry_after_date_is_read_against_the_answers_own_date(
        client: IndexClient, index: Loopback, clock: Clock) -> None:
    clock.now += 3600  # the agent's clock is an hour fast: it must not shorten the wait

    def busy(_seen: Seen) -> Reply:
        until = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
        return error(429, "rate_limited", **{"Retry-After": until})

    index.on("POST", "/index/v1/heartbeat", busy, Reply(200, {"interval": 60}))
    assert client.heartbeat() is None
    clock.now += 45  # 40 s (give or take the headers' whole second) stretched: ~50 s
    assert client.heartbeat() is None
    clock.now += 10
    assert client.heartbeat() == {"interval": 60}


# --- not announced ---------------------------------------------------------------------


def test_not_announced_is_raised_to_the_caller_not_sent_to_the_platform(
        client: IndexClient, platform: Loopback, index: Loopback) -> None:
    index.on("POST", "/index/v1/heartbeat", error(409, "not_announced"))
    with pytest.raises(PlatformError) as refused:
        client.heartbeat()
    assert (refused.value.status, refused.value.code) == (409, "not_announced")
    assert platform_peer_calls(platform) == []


@pytest.fixture
def daemon(tmp_path: Path, platform: Loopback, clock: Clock) -> Iterator[Daemon]:
    """Bob's serving agent (holding nothing), its platform the loopback one."""
    home = AgentHome(tmp_path / "agent")
    home.save_config(AgentConfig(platform_url=platform.url, token="bob-token",
                                 username="bob", device_name="bob-laptop"))
    DeviceKeys.generate().save(home.device_key_path)
    agent = Agent(home)
    serving = Daemon(agent, ServeOptions(host="127.0.0.1", port=7123), clock=clock)
    yield serving
    serving.index.close()
    serving.store.close()
    serving.outbox.close()
    agent.close()


def test_the_daemon_announces_again_with_replace_when_the_index_forgot_it(
        daemon: Daemon, platform: Loopback, index: Loopback) -> None:
    index.on("POST", "/index/v1/heartbeat", error(409, "not_announced"))
    asyncio.run(daemon.announce(replace=True))
    asyncio.run(daemon.heartbeat())
    assert index.calls() == ["POST /index/v1/announce", "POST /index/v1/heartbeat",
                             "POST /index/v1/announce"]
    assert [s.body["replace"] for s in index.seen if s.body] == [True, True]
    assert index.seen[2].body["port"] == 7123
    assert platform.seen[0].body == {"device": daemon.device_id}
    assert platform_peer_calls(platform) == []


def test_the_daemons_heartbeat_is_a_full_announce_as_often_as_the_credential_says(
        daemon: Daemon, platform: Loopback, index: Loopback, clock: Clock) -> None:
    credentials = Credentials(index.url)

    def with_reannounce(seen: Seen) -> Reply:
        reply = credentials(seen)
        reply.body["reannounce"] = 600
        return reply

    platform.on("POST", CREDENTIAL, with_reannounce)
    asyncio.run(daemon.heartbeat())  # no full announce yet: this beat is one
    clock.now += 599
    asyncio.run(daemon.heartbeat())
    clock.now += 2
    asyncio.run(daemon.heartbeat())
    asyncio.run(daemon.heartbeat())
    assert index.calls() == ["POST /index/v1/announce", "POST /index/v1/heartbeat",
                             "POST /index/v1/announce", "POST /index/v1/heartbeat"]
    assert [s.body["replace"] for s in index.seen if s.body] == [True, True]


def test_a_work_withdrawn_from_sale_is_left_out_and_the_others_announced(
        daemon: Daemon, platform: Loopback, index: Loopback, sale: Any) -> None:
    held = daemon.store.add_verified(sale.manifest, sale.manifest_token)
    held.import_ciphertext(sale.packaged.ciphertext_path)
    withdrawn = held.work_id

    def judge(seen: Seen) -> Reply:
        works = [h["work"] for h in seen.body["holdings"]]
        if withdrawn in works:
            refusal = error(400, "unknown_work")
            name = f"holdings[{works.index(withdrawn)}].work"
            refusal.body["error"]["fields"] = {name: [f"No work {withdrawn} on sale."]}
            return refusal
        return Reply(200, {"peer_id": DEVICE, "url": "http://127.0.0.1:7123",
                           "interval": 30, "holdings": len(works)})

    index.on("POST", "/index/v1/announce", judge)
    platform.on("POST", "/api/v1/peers/announce/", judge)
    asyncio.run(daemon.announce(replace=True))  # refused for the work, then sent without it
    asyncio.run(daemon.announce(replace=False))  # nothing new: nothing sent
    sent = [[h["work"] for h in s.body["holdings"]] for s in index.seen]
    assert sent == [[withdrawn], []]  # refused by name, then announced without it
    assert platform_peer_calls(platform) == ["POST /api/v1/peers/announce/"]  # it agreed
