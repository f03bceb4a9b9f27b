"""`serve`'s status line: the counters behind it (stepped with a fake clock, never by
waiting), its wording, how it is shown on a terminal, in a log and as JSON, and where
its figures come from (the piece server, the outbox, the platform's wallet)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import time
from pathlib import Path

import pytest

from agent.activity import UploadMeter, UploadSnapshot, status_line
from agent.commands_transfer import LiveLine, LogAboveLiveLine, serve_reporter
from agent.context import Agent
from agent.daemon import Daemon, ServeOptions
from agent.outbox import OrderOutbox
from agent.wire import LICENCE_HEADER, ORDER_HEADER, piece_url
from licensing.core import DeviceKeys, Order, sign_revocation_list
from tests.agent.fake_platform import FakePlatform, logged_in_home
from tests.agent.support import start_seeder
from tests.agent.test_server import get, order_for
from tests.licensing.core_support import WORK_ID, Sale


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def day_of(at: float) -> dt.date:
    """Days of exactly 86,400 s from the epoch: midnight is a multiple of 86,400."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(at // 86_400))


def meter_at(clock: Clock) -> UploadMeter:
    return UploadMeter(clock=clock, day_of=day_of, rate_window=10, peer_window=60.0)


# --- the counters ----------------------------------------------------------------------------


def test_the_meter_counts_peers_rate_and_today_s_bytes() -> None:
    clock = Clock(1000.0)
    meter = meter_at(clock)
    meter.served(device_id="a", byte_count=1000)
    clock.now = 1000.5
    meter.served(device_id="b", byte_count=3000)
    clock.now = 1004.0
    meter.served(device_id="a", byte_count=2000)

    first = meter.snapshot()
    # 6,000 bytes within the last 10 s: 600 B/s; two devices; three pieces.
    assert (first.peers, first.rate_bps, first.bytes_today, first.pieces_today) == (
        2, 600.0, 6000, 3)

    clock.now = 1010.5  # the second 1000 (4,000 bytes) has left the window; 1004 has not
    assert meter.snapshot().rate_bps == 200.0
    assert meter.snapshot().peers == 2

    clock.now = 1064.9  # a was last served at 1004, b at 1000.5: both over 60 s ago
    later = meter.snapshot()
    assert (later.peers, later.rate_bps, later.bytes_today) == (0, 0.0, 6000)


def test_today_s_total_starts_from_the_outbox_and_again_at_midnight() -> None:
    clock = Clock(86_000.0)
    meter = meter_at(clock)
    meter.start_day(bytes_served=10_000, pieces=5)
    clock.now = 86_399.0
    meter.served(device_id="c", byte_count=500)
    assert (meter.snapshot().bytes_today, meter.snapshot().pieces_today) == (10_500, 6)

    clock.now = 86_400.0  # midnight
    assert (meter.snapshot().bytes_today, meter.snapshot().pieces_today) == (0, 0)
    clock.now = 86_401.0
    meter.served(device_id="c", byte_count=700)
    assert meter.snapshot().bytes_today == 700


def test_the_rate_buckets_stay_within_the_window() -> None:
    clock = Clock(0.0)
    meter = meter_at(clock)
    for second in range(1000):
        clock.now = float(second)
        meter.served(device_id="a", byte_count=100)
    # Ten one-second buckets of 100 bytes: 1,000 bytes over 10 s.
    assert meter.snapshot().rate_bps == 100.0
    assert meter.snapshot().bytes_today == 100_000


# --- the wording -----------------------------------------------------------------------------


@pytest.mark.parametrize(("snapshot", "line"), [
    (UploadSnapshot(peers=2, rate_bps=600.0, bytes_today=6000, pieces_today=3, credit=None),
     "2 peers, 600 B/s up, 5.9 KiB served today (3 pieces)"),
    (UploadSnapshot(peers=1, rate_bps=1_572_864.0, bytes_today=262_160, pieces_today=1,
                    credit={"EUR": 42}),
     "1 peer, 1.5 MiB/s up, 256.0 KiB served today (1 piece), seeding credit €0.42"),
    (UploadSnapshot(peers=0, rate_bps=0.0, bytes_today=3 * 1024**3, pieces_today=12_288,
                    credit={"KRW": 1500, "KWD": 2500}),
     "0 peers, 0 B/s up, 3.0 GiB served today (12,288 pieces), "
     "seeding credit ₩1,500 + KWD2.500"),
    (UploadSnapshot(peers=0, rate_bps=0.0, bytes_today=0, pieces_today=0, credit={}),
     "0 peers, 0 B/s up, 0 B served today (0 pieces), no seeding credit yet"),
    (UploadSnapshot(peers=0, rate_bps=0.0, bytes_today=0, pieces_today=0, credit={},
                    compute_credit={}),
     "0 peers, 0 B/s up, 0 B served today (0 pieces), no seeding credit yet"),
    (UploadSnapshot(peers=1, rate_bps=0.0, bytes_today=0, pieces_today=0, credit={"EUR": 42},
                    compute_credit={"EUR": 1500, "KRW": 300}),
     "1 peer, 0 B/s up, 0 B served today (0 pieces), seeding credit €0.42, "
     "compute credit €15.00 + ₩300"),
])
def test_the_status_line_reads(snapshot: UploadSnapshot, line: str) -> None:
    assert status_line(snapshot) == line


SNAPSHOT = UploadSnapshot(peers=2, rate_bps=600.0, bytes_today=6000, pieces_today=3,
                          credit={"EUR": 42})
LINE = "2 peers, 600 B/s up, 5.9 KiB served today (3 pieces), seeding credit €0.42"


# --- how it is shown ---------------------------------------------------------------------------


def test_off_a_terminal_it_is_a_log_line_at_the_chosen_interval(caplog) -> None:
    report, every, live = serve_reporter(json_lines=False, status_every=60.0,
                                         stdout=io.StringIO(), interactive=False)
    assert (every, live) == (60.0, None)
    with caplog.at_level(logging.INFO, logger="agent.status"):
        report(SNAPSHOT)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("agent.status", LINE)]


def test_at_a_terminal_it_is_redrawn_in_place_every_second() -> None:
    terminal = io.StringIO()
    report, every, live = serve_reporter(json_lines=False, status_every=60.0, stdout=terminal,
                                         interactive=True)
    assert every == 1.0
    assert live is not None
    report(UploadSnapshot(peers=0, rate_bps=0.0, bytes_today=0, pieces_today=0, credit=None))
    report(SNAPSHOT)
    live.close()
    assert terminal.getvalue() == (
        "\r\x1b[K0 peers, 0 B/s up, 0 B served today (0 pieces)" + "\r\x1b[K" + LINE + "\n")


def test_with_json_it_is_one_object_per_line() -> None:
    out = io.StringIO()
    report, every, live = serve_reporter(json_lines=True, status_every=30.0, stdout=out,
                                         interactive=True)
    assert (every, live) == (30.0, None)
    report(SNAPSHOT)
    assert json.loads(out.getvalue()) == {
        "peers": 2, "upload_bytes_per_second": 600, "bytes_served_today": 6000,
        "pieces_served_today": 3, "seeding_credit_minor": {"EUR": 42},
        "compute_credit_minor": None}


def test_the_live_line_is_cut_to_the_terminal_s_width() -> None:
    terminal = io.StringIO()
    live = LiveLine(terminal, columns=lambda: 11)
    live.show("0123456789abcdef")
    assert terminal.getvalue() == "\r\x1b[K0123456789"


def test_a_log_record_is_written_above_the_live_line() -> None:
    terminal = io.StringIO()
    live = LiveLine(terminal, columns=lambda: 80)
    handler = LogAboveLiveLine(live, terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    live.show("2 peers")
    handler.emit(logging.makeLogRecord({"msg": "heartbeat failed"}))
    assert terminal.getvalue() == (
        "\r\x1b[K2 peers" + "\r\x1b[K" + "heartbeat failed\n" + "\r\x1b[K2 peers")


# --- where the figures come from ----------------------------------------------------------


def test_the_piece_server_tells_of_each_piece_delivered(sale: Sale, tmp_path: Path) -> None:
    told: list[tuple[str, str, int]] = []

    async def scenario() -> None:
        seeder = await start_seeder(sale, tmp_path,
                                    on_served=lambda *piece: told.append(piece))
        try:
            url = piece_url(seeder.url, WORK_ID, 3)
            refused, _, _ = await get(url, {LICENCE_HEADER: sale.licence_token})
            ok, _, _ = await get(url, {LICENCE_HEADER: sale.licence_token,
                                       ORDER_HEADER: order_for(sale, seeder, 3)})
            assert (refused, ok) == (401, 200)
        finally:
            await seeder.server.stop()
            seeder.outbox.close()

    asyncio.run(scenario())
    assert told == [(WORK_ID, sale.bob.device_id, 262_160)]


def test_the_outbox_says_what_was_served_since_a_time(tmp_path: Path) -> None:
    clock = Clock(1_000.0)
    outbox = OrderOutbox(tmp_path / "outbox.sqlite3", clock=clock)
    for n, (at, size) in enumerate([(1_000.0, 100), (2_000.0, 250), (3_000.0, 400)]):
        clock.now = at
        outbox.append(f"t{n}", Order(licence_id="l", peer_id="p", piece=n, byte_count=size,
                                     nonce=f"n{n}", issued_at=int(at), device_id="d"),
                      work_id="w")
    assert outbox.served_since(2_000.0) == (650, 2)
    assert outbox.served_since(3_001.0) == (0, 0)
    outbox.close()


def test_the_meter_takes_seeding_and_compute_credit_from_the_wallet() -> None:
    meter = meter_at(Clock(1000.0))
    meter.balances_seen([
        {"kind": "wallet", "currency": "EUR", "balance_minor": 2500, "display": "€25.00"},
        {"kind": "seeding", "currency": "EUR", "balance_minor": 42, "display": "€0.42"},
        {"kind": "compute", "currency": "EUR", "balance_minor": 1500, "display": "€15.00"}])
    snapshot = meter.snapshot()
    assert (snapshot.credit, snapshot.compute_credit) == ({"EUR": 42}, {"EUR": 1500})
    assert status_line(snapshot).endswith("seeding credit €0.42, compute credit €15.00")
    assert snapshot.as_json()["compute_credit_minor"] == {"EUR": 1500}


def test_the_daemon_reports_the_seeding_credit_the_wallet_shows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = FakePlatform()
    platform.on("GET", "/api/v1/wallet/", {"balances": [
        {"kind": "wallet", "currency": "EUR", "balance_minor": 2500, "display": "€25.00"},
        {"kind": "seeding", "currency": "EUR", "balance_minor": 42, "display": "€0.42"}]})
    platform.install(monkeypatch)
    home = logged_in_home(tmp_path / "agent")
    DeviceKeys.generate().save(home.device_key_path)
    reports: list[UploadSnapshot] = []
    daemon = Daemon(Agent(home), ServeOptions(host="127.0.0.1", port=0),
                    report=reports.append, clock=Clock(1000.0))
    try:
        asyncio.run(daemon.send_report())
        asyncio.run(daemon.refresh_credit())
        asyncio.run(daemon.send_report())
    finally:
        daemon.store.close()
        daemon.outbox.close()
    assert [r.credit for r in reports] == [None, {"EUR": 42}]
    assert status_line(reports[1]).endswith("seeding credit €0.42")


def test_a_daemon_run_reports_what_was_served_today_before_it_started(
        sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    platform = FakePlatform()
    platform.on("GET", "/.well-known/jwks.json", sale.ring.to_jwks())
    platform.on("GET", "/api/v1/revocations/", {"token": sign_revocation_list(
        keyring=sale.ring, version=1, issued_at=int(now) - 60, next_update=int(now) + 86_400,
        licences=[], devices=[])})
    platform.on("POST", "/api/v1/peers/announce/", {})
    platform.on("POST", "/api/v1/peers/heartbeat/", {})
    platform.on("GET", "/api/v1/wallet/", {"balances": []})
    platform.install(monkeypatch)
    home = logged_in_home(tmp_path / "agent")
    DeviceKeys.generate().save(home.device_key_path)
    outbox = OrderOutbox(home.outbox_path, clock=lambda: now)
    outbox.append("t", Order(licence_id="l", peer_id="p", piece=0, byte_count=262_160,
                             nonce="n", issued_at=int(now), device_id="bob"), work_id=WORK_ID)
    outbox.mark_sent([p.id for p in outbox.pending()])
    outbox.close()
    reports: list[UploadSnapshot] = []
    options = ServeOptions(host="127.0.0.1", port=0, report_seconds=60.0, once=True)
    asyncio.run(Daemon(Agent(home), options, report=reports.append, clock=lambda: now).run())
    assert len(reports) == 1
    assert (reports[0].bytes_today, reports[0].pieces_today, reports[0].peers) == (262_160, 1, 0)
