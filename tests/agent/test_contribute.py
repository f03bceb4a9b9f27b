"""``contribute``: its declared limits, what it detects of the machine (fake /sys, /proc
and /dev), the day's hours, the module hash check, and the loop against a written-down
platform (tests/agent/fake_platform.py): dispatch retried under the same idempotency
key, results signed and sent, refusals that stop it. Units run in the real sandbox
(worker processes) on the demo renderer; no network beyond the mock transport."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.cli import build_parser, main
from agent.config import AgentHome
from agent.contribute import limits as limits_module
from agent.contribute.limits import (
    Conditions,
    DeclaredLimits,
    UsageLedger,
    cores_arg,
    default_cores,
    hours_arg,
    load_average,
    memory_mib_arg,
    next_local_midnight,
    on_battery,
    seconds_since_terminal_input,
)
from agent.contribute.loop import ContributeLoop, Options, parse_assignment, transient
from agent.contribute.runner import ModuleMismatchError, ModuleStore, UnitPool
from agent.display import contribute_line
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError
from compute.demo import RENDER_WASM, Tile, tile_input
from compute.profile import runtime_profile
from licensing.core import DeviceKeys, read_compute_result
from tests.agent.fake_platform import URL, FakePlatform, Reply, logged_in_home, page

WASM = RENDER_WASM.read_bytes()
SHA = hashlib.sha256(WASM).hexdigest()
JOB = "8d6c1f7e-2b1a-4a8e-9d51-3f0e6f1f2a10"
SMALL_TILE = Tile(8, 8, 8, 8)


# --- declared limits -----------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "cores"), [(None, default_cores()), (1, 1), (2, 1), (3, 1),
                                             (8, 4), (0, 1)])
def test_the_default_is_half_the_cpus_and_at_least_one(cpus: int | None, cores: int) -> None:
    assert default_cores(cpus) == cores


@pytest.mark.parametrize(("parse", "text", "value"), [
    (cores_arg, "1", 1), (cores_arg, "256", 256), (memory_mib_arg, "512", 512),
    (memory_mib_arg, "4096", 4096), (hours_arg, "1", 1), (hours_arg, "24", 24)])
def test_limits_within_range_are_taken(parse: Any, text: str, value: int) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(("parse", "text"), [
    (cores_arg, "0"), (cores_arg, "257"), (cores_arg, "1.5"), (cores_arg, "two"),
    (memory_mib_arg, "0"), (memory_mib_arg, "4097"), (hours_arg, "0"), (hours_arg, "25"),
    (hours_arg, "-3"), (hours_arg, "")])
def test_limits_out_of_range_or_not_whole_are_refused(parse: Any, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_the_command_line_takes_every_limit_and_refuses_a_bad_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args([
        "contribute", "--cores", "3", "--memory-mib", "512", "--hours-per-day", "6",
        "--only-when-idle", "--batch", "8", "--max-units", "40", "--until-idle", "--json"])
    assert (args.cores, args.memory_mib, args.hours_per_day, args.only_when_idle,
            args.batch, args.max_units, args.until_idle, args.json) == (
        3, 512, 6, True, 8, 40, True, True)
    defaults = build_parser().parse_args(["contribute"])
    assert (defaults.cores, defaults.memory_mib, defaults.hours_per_day, defaults.batch,
            defaults.max_units, defaults.until_idle) == (default_cores(), 256, 24, None,
                                                         None, False)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["contribute", "--hours-per-day", "25"])
    assert exit_.value.code == 2
    assert "give 1 to 24 hours, not 25" in capsys.readouterr().err


def test_declared_limits_give_memory_in_bytes() -> None:
    assert DeclaredLimits(cores=2, memory_mib=128).memory_bytes == 128 * 2**20
    with pytest.raises(ValueError, match="cores"):
        DeclaredLimits(cores=0)


# --- battery, load, input ------------------------------------------------------------------


def _supply(root: Path, name: str, **files: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in files.items():
        (folder / key).write_text(value + "\n")


def test_on_battery_when_every_mains_supply_is_offline(tmp_path: Path) -> None:
    _supply(tmp_path, "AC", type="Mains", online="0")
    _supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert on_battery(tmp_path)


def test_on_mains_when_a_mains_supply_is_online(tmp_path: Path) -> None:
    _supply(tmp_path, "AC", type="Mains", online="1")
    _supply(tmp_path, "BAT0", type="Battery", status="Charging")
    assert not on_battery(tmp_path)
    _supply(tmp_path, "ADP2", online="0")  # an adapter with no type file, by its name
    assert not on_battery(tmp_path)


def test_an_adapter_without_a_type_is_known_by_its_name(tmp_path: Path) -> None:
    _supply(tmp_path, "ADP1", online="0")
    assert on_battery(tmp_path)


@pytest.mark.parametrize("layout", ["nothing", "battery only", "usb only", "missing"])
def test_without_a_mains_supply_nothing_is_detected(tmp_path: Path, layout: str) -> None:
    if layout == "battery only":
        _supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    if layout == "usb only":
        _supply(tmp_path, "usb-c", type="USB", online="0")
    folder = tmp_path / "absent" if layout == "missing" else tmp_path
    assert not on_battery(folder)


def test_the_load_average_is_the_first_field_of_proc_loadavg(tmp_path: Path) -> None:
    path = tmp_path / "loadavg"
    path.write_text("1.25 0.80 0.40 2/345 6789\n")
    assert load_average(path) == 1.25
    path.write_text("garbage\n")
    assert load_average(path) is None
    assert load_average(tmp_path / "absent") is None


def _dev(tmp_path: Path, **ages: float) -> Path:
    """A fake /dev whose terminals were last read (typed at) ``ages`` seconds ago."""
    dev = tmp_path / "dev"
    (dev / "pts").mkdir(parents=True)
    now = time.time()
    for name, age in ages.items():
        path = dev / name.replace("_", "/")
        path.write_text("")
        os.utime(path, (now - age, now - age))
    return dev


def test_the_last_input_is_the_newest_terminal_access(tmp_path: Path) -> None:
    dev = _dev(tmp_path, pts_0=4000, pts_1=90, tty2=7000, ttyS0=1)  # ttyS0: a serial port
    assert seconds_since_terminal_input(dev, now=time.time()) == pytest.approx(90, abs=2)
    assert seconds_since_terminal_input(_dev(tmp_path / "none"), now=time.time()) is None


def _conditions(tmp_path: Path, *, load: str = "0.10 0.1 0.1 1/1 1", idle: bool = True,
                hours: int = 24, cpus: int = 2, **ages: float) -> Conditions:
    limits = DeclaredLimits(cores=1, hours_per_day=hours, only_when_idle=idle)
    (tmp_path / "loadavg").write_text(load)
    (tmp_path / "power").mkdir(exist_ok=True)
    return Conditions(limits=limits, ledger=UsageLedger(tmp_path / "usage.json",
                                                        hours_per_day=hours),
                      power_supply=tmp_path / "power", proc_loadavg=tmp_path / "loadavg",
                      dev=_dev(tmp_path, **ages), cpus=cpus)


def test_an_idle_machine_is_not_paused(tmp_path: Path) -> None:
    assert _conditions(tmp_path, pts_0=3600).pause(now=time.time(), running=0) is None


def test_others_load_pauses_but_our_own_running_units_do_not_count(tmp_path: Path) -> None:
    conditions = _conditions(tmp_path, load="2.40 1.0 0.5 3/300 1")
    pause = conditions.pause(now=time.time(), running=0)
    assert pause is not None
    assert pause.reason == "machine-busy"
    assert "others' load is 2.40 (idle below 1.00)" in pause.detail
    assert conditions.pause(now=time.time(), running=2) is None  # 0.40 is others'


def test_recent_typing_at_a_terminal_pauses_until_five_minutes_after_it(tmp_path: Path) -> None:
    now = time.time()
    pause = _conditions(tmp_path, pts_3=60).pause(now=now, running=0)
    assert pause is not None
    assert pause.reason == "user-active"
    assert pause.until == pytest.approx(now + 30, abs=2)  # looked at again in 30 s


def test_without_only_when_idle_load_and_typing_do_not_matter_but_battery_does(
        tmp_path: Path) -> None:
    conditions = _conditions(tmp_path, load="9.0 9.0 9.0 9/9 9", idle=False, pts_0=1)
    assert conditions.pause(now=time.time(), running=0) is None
    _supply(tmp_path / "power", "AC", type="Mains", online="0")
    pause = conditions.pause(now=time.time(), running=0)
    assert pause is not None
    assert pause.reason == "on-battery"


# --- the day's hours -------------------------------------------------------------------------


def test_the_ledger_counts_per_local_day_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    ledger = UsageLedger(path, hours_per_day=2)
    noon = time.mktime((2030, 5, 17, 12, 0, 0, 0, 0, -1))
    ledger.add(3600, noon)
    ledger.add(1800, noon + 60)
    assert ledger.used(noon) == 5400
    assert ledger.left(noon) == 1800
    ledger.save()
    assert path.stat().st_mode & 0o777 == 0o600
    again = UsageLedger(path, hours_per_day=2)
    assert again.used(noon) == 5400
    assert again.used(noon + 86400) == 0  # the next day starts afresh
    assert json.loads(path.read_text()) == {"2030-05-17": 5400.0}


def test_a_used_up_day_pauses_until_local_midnight(tmp_path: Path) -> None:
    conditions = _conditions(tmp_path, idle=False, hours=1)
    evening = time.mktime((2030, 5, 17, 20, 30, 0, 0, 0, -1))
    conditions.ledger.add(3599, evening)
    assert conditions.pause(now=evening, running=0) is None
    conditions.ledger.add(1, evening)
    pause = conditions.pause(now=evening, running=0)
    assert pause is not None
    assert pause.reason == "hours-used"
    assert pause.until == next_local_midnight(evening)
    assert time.localtime(pause.until)[:6] == (2030, 5, 18, 0, 0, 0)
    assert conditions.pause(now=pause.until + 1, running=0) is None


def test_a_ledger_that_cannot_be_read_starts_again_and_old_days_are_forgotten(
        tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_text("{not json")
    ledger = UsageLedger(path, hours_per_day=24)
    assert ledger.used(time.time()) == 0
    start = time.mktime((2030, 1, 1, 12, 0, 0, 0, 0, -1))
    for day in range(20):
        ledger.add(60, start + day * 86400)
    ledger.save()
    assert len(json.loads(path.read_text())) == limits_module.LEDGER_DAYS


# --- modules --------------------------------------------------------------------------------


def test_a_module_is_fetched_once_and_kept_under_its_hash(tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch(sha: str) -> bytes:
        fetched.append(sha)
        return WASM

    store = ModuleStore(tmp_path / "modules", fetch)
    assert store.get(SHA) == WASM
    assert store.get(SHA) == WASM
    assert fetched == [SHA]
    assert (tmp_path / "modules" / f"{SHA}.wasm").stat().st_mode & 0o777 == 0o600


def test_a_module_whose_bytes_are_not_its_name_is_refused_and_not_kept(tmp_path: Path) -> None:
    store = ModuleStore(tmp_path / "modules", lambda sha: WASM + b"\0")
    with pytest.raises(ModuleMismatchError, match=f"not {SHA}: refused, not run"):
        store.get(SHA)
    assert not (tmp_path / "modules" / f"{SHA}.wasm").exists()
    with pytest.raises(ModuleMismatchError, match="is not a module's SHA-256"):
        store.get("../../etc/passwd")


def test_a_kept_module_that_changed_on_disk_is_fetched_again(tmp_path: Path) -> None:
    store = ModuleStore(tmp_path / "modules", lambda sha: WASM)
    store.get(SHA)
    (tmp_path / "modules" / f"{SHA}.wasm").write_bytes(b"tampered")
    assert store.get(SHA) == WASM


# --- the loop against a written-down platform ----------------------------------------------


def _assignment(number: int, *, unit: str = "0", deadline: float | None = None,
                tile: Tile = SMALL_TILE) -> dict[str, Any]:
    when = time.gmtime(deadline if deadline is not None else time.time() + 600)
    return {"assignment": number, "job": JOB, "unit": unit, "module": SHA,
            "module_size": len(WASM), "args": ["job"],
            "input": base64.b64encode(tile_input(32, 24, tile, samples=2)).decode(),
            "fuel": 2_000_000_000, "memory_bytes": 64 * 2**20, "output_bytes": 8 * 8 * 3,
            "runtime": runtime_profile(),
            "deadline": time.strftime("%Y-%m-%dT%H:%M:%SZ", when)}


class Market:
    """The compute endpoints of the fake platform: batches handed out in turn, results
    recorded and accepted (or answered as a test says)."""

    def __init__(self, fake: FakePlatform, batches: list[Any]) -> None:
        self.batches = batches
        self.keys: list[str | None] = []
        self.results: list[dict[str, Any]] = []
        self.enrolled: list[dict[str, Any]] = []
        self.module = Reply.raw(WASM, "application/wasm")
        fake.on("POST", "/api/v1/compute/contributors/", self._enroll)
        fake.on("POST", "/api/v1/compute/dispatch/", self._dispatch)
        fake.on("POST", "/api/v1/compute/results/", self._results)
        fake.on("GET", f"/api/v1/compute/modules/{SHA}/", lambda request: self.module)
        fake.on("GET", "/api/v1/wallet/", {"balances": [
            {"kind": "compute", "currency": "EUR", "balance_minor": 42}]})
        fake.on("GET", "/api/v1/compute/contributors/", page([]))

    def _enroll(self, request: httpx.Request) -> dict[str, Any]:
        self.enrolled.append(json.loads(request.content))
        return {"device": "d"}

    def _dispatch(self, request: httpx.Request) -> Any:
        self.keys.append(request.headers.get("Idempotency-Key"))
        answer = self.batches.pop(0) if self.batches else []
        if isinstance(answer, Reply):
            return answer
        return {"assignments": answer, "retry_after": 0 if answer else 15}

    def _results(self, request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content)
        self.results += body["results"]
        return {"accepted": len(body["results"]), "duplicate": 0, "rejected": 0,
                "results": [{"index": i, "assignment": r["assignment"], "status": "accepted",
                             "reason": "", "message": ""}
                            for i, r in enumerate(body["results"])]}


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.contribute.loop.BACKOFF_FIRST", 0.01)


def _loop(tmp_path: Path, fake: FakePlatform, *, device: DeviceKeys | None = None,
          cores: int = 1, max_units: int | None = None) -> ContributeLoop:
    client = PlatformClient(URL, "bob-token", transport=httpx.MockTransport(fake.handle))
    home = AgentHome(tmp_path / "agent")
    limits = DeclaredLimits(cores=cores, memory_mib=128)
    conditions = _conditions(tmp_path, idle=False)
    return ContributeLoop(platform=client, device=device or DeviceKeys.generate(), home=home,
                          options=Options(limits=limits, batch=cores, max_units=max_units,
                                          until_idle=True),
                          conditions=conditions)


def test_units_run_in_the_sandbox_are_signed_sent_and_logged(tmp_path: Path) -> None:
    fake = FakePlatform()
    market = Market(fake, [[_assignment(7, unit="0")], [_assignment(8, unit="1")], []])
    device = DeviceKeys.generate()
    tally = _loop(tmp_path, fake, device=device).run()

    assert tally.as_json() == {"units_run": 2, "accepted": 2, "rejected": 0, "duplicate": 0,
                               "not_run": 0, "rejected_reasons": {}, "stopped_because": "idle"}
    assert market.enrolled[0]["runtime"] == runtime_profile()
    assert market.enrolled[0]["memory_bytes"] == 128 * 2**20
    assert [r["assignment"] for r in market.results] == [7, 8]
    for sent, unit in zip(market.results, ("0", "1"), strict=True):
        output = base64.b64decode(sent["output"])
        result = read_compute_result(sent["token"], device=device.public, job_id=JOB,
                                     unit_id=unit, now=int(time.time()))
        assert (result.output_sha256, result.output_size) == (
            hashlib.sha256(output).digest(), 8 * 8 * 3)
        assert result.stop.value == "exit"
        assert result.fuel > 0
    log = [json.loads(line) for line in
           (tmp_path / "agent" / "compute" / "results.jsonl").read_text().splitlines()]
    assert [(e["assignment"], e["status"]) for e in log] == [(7, "accepted"), (8, "accepted")]
    assert fake.paths().count(f"GET /api/v1/compute/modules/{SHA}/") == 1


def test_a_lost_dispatch_answer_is_asked_again_under_the_same_key(
        tmp_path: Path, fast_backoff: None) -> None:
    fake = FakePlatform()
    market = Market(fake, [Reply.error(503, "unavailable"), Reply.error(429, "throttled"),
                           Reply.error(409, "idempotency_in_flight"),
                           [_assignment(3)], []])
    tally = _loop(tmp_path, fake).run()

    assert tally.accepted == 1
    first, retry1, retry2, retry3, next_request = market.keys
    assert first
    assert first == retry1 == retry2 == retry3
    assert next_request
    assert next_request != first


def test_results_whose_answer_was_lost_are_sent_again_as_they_were(
        tmp_path: Path, fast_backoff: None) -> None:
    fake = FakePlatform()
    market = Market(fake, [[_assignment(5)], []])
    answers: list[Any] = [Reply.error(502, "bad_gateway")]
    sent: list[bytes] = []

    def results(request: httpx.Request) -> Any:
        sent.append(request.content)
        return answers.pop(0) if answers else market._results(request)

    fake.on("POST", "/api/v1/compute/results/", results)
    tally = _loop(tmp_path, fake).run()

    assert tally.accepted == 1
    assert len(sent) == 2
    assert sent[0] == sent[1]


def test_a_wrong_module_is_not_run_and_nothing_is_sent(tmp_path: Path) -> None:
    fake = FakePlatform()
    market = Market(fake, [[_assignment(9)], []])
    market.module = Reply.raw(WASM[:-1] + b"\x01", "application/wasm")
    tally = _loop(tmp_path, fake).run()

    assert (tally.units_run, tally.not_run, tally.accepted) == (0, 1, 0)
    assert market.results == []
    (entry,) = [json.loads(line) for line in
                (tmp_path / "agent" / "compute" / "results.jsonl").read_text().splitlines()]
    assert entry["status"] == "not-run"
    assert "refused, not run" in entry["reason"]
    assert not (tmp_path / "agent" / "compute" / "modules" / f"{SHA}.wasm").exists()


def test_a_unit_past_its_deadline_is_not_started(tmp_path: Path) -> None:
    fake = FakePlatform()
    market = Market(fake, [[_assignment(4, deadline=time.time() - 5)], []])
    tally = _loop(tmp_path, fake).run()
    assert (tally.units_run, tally.not_run) == (0, 1)
    assert market.results == []


def test_max_units_stops_after_that_many(tmp_path: Path) -> None:
    fake = FakePlatform()
    market = Market(fake, [[_assignment(1)], [_assignment(2, unit="1")], [_assignment(3)]])
    tally = _loop(tmp_path, fake, max_units=2).run()
    assert tally.stopped_because == "max-units"
    assert [r["assignment"] for r in market.results] == [1, 2]
    assert len(market.keys) == 2


def test_a_suspended_contributor_stops_with_the_platform_s_reason(tmp_path: Path) -> None:
    fake = FakePlatform()
    Market(fake, [Reply.error(403, "contributor_suspended", "5 of 10 disagreed")])
    loop = _loop(tmp_path, fake)
    tally = loop.run()
    assert tally.stopped_because == "contributor_suspended"
    assert isinstance(loop.error, PlatformError)
    assert loop.error.status == 403


def test_which_errors_are_worth_asking_again_about() -> None:
    assert transient(PlatformUnreachableError("down"))
    assert transient(PlatformError(503, "unavailable", ""))
    assert transient(PlatformError(429, "throttled", ""))
    assert transient(PlatformError(409, "idempotency_in_flight", ""))
    assert not transient(PlatformError(409, "not_contributing", ""))
    assert not transient(PlatformError(403, "device_revoked", ""))


def test_an_assignment_is_read_from_dispatch_s_shape() -> None:
    item = parse_assignment(_assignment(12, unit="3", deadline=2_000_000_000))
    assert (item.assignment, item.job, item.unit, item.module, item.args) == (
        12, JOB, "3", SHA, ("job",))
    assert item.input.startswith(b"PMRT1 32 24 8 8 8 8 2")
    assert item.deadline == 2_000_000_000


# --- the command ------------------------------------------------------------------------------


def test_contribute_prints_a_json_summary_with_the_compute_credit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakePlatform()
    fake.install(monkeypatch)
    market = Market(fake, [[_assignment(21)], []])
    home = logged_in_home(tmp_path / "agent")
    DeviceKeys.generate().save(home.device_key_path)
    monkeypatch.setattr("agent.contribute.limits.on_battery", lambda *a: False)

    code = main(["--data-dir", str(home.root), "--json", "contribute", "--until-idle",
                 "--cores", "1", "--hours-per-day", "3"])

    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out == {"units_run": 1, "accepted": 1, "rejected": 0, "duplicate": 0, "not_run": 0,
                   "rejected_reasons": {}, "stopped_because": "idle",
                   "compute_credit": [{"currency": "EUR", "balance_minor": 42,
                                       "display": "€0.42"}]}
    assert market.enrolled[0]["hours_per_day"] == 3
    assert json.loads((home.root / "compute" / "usage.json").read_text())  # time counted


def test_contribute_needs_a_login(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path / "agent"), "contribute"]) == 1
    assert "Not logged in" in capsys.readouterr().err


def test_the_live_line_says_what_is_known_so_far() -> None:
    line = contribute_line(units_run=12, accepted=10, rejected=1, duplicate=0, running=2,
                           used_today_seconds=5400, hours_per_day=4)
    assert line == "units run 12 · accepted 10, rejected 1 · running 2 · 1.5/4 h today"
    paused = contribute_line(units_run=0, accepted=0, rejected=0, duplicate=1, running=0,
                             used_today_seconds=0, hours_per_day=24,
                             pause="the machine runs on battery")
    assert paused.endswith("duplicate 1 · running 0 · 0.0/24 h today · paused: the machine "
                           "runs on battery")


def test_a_stop_abandons_the_unit_in_flight_and_sends_nothing(tmp_path: Path) -> None:
    import threading

    fake = FakePlatform()
    slow = _assignment(30, tile=Tile(0, 0, 32, 24))
    slow["input"] = base64.b64encode(tile_input(32, 24, Tile(0, 0, 32, 24),
                                                samples=1024)).decode()
    slow["fuel"], slow["output_bytes"] = 10**12, 32 * 24 * 3
    market = Market(fake, [[slow], []])
    loop = _loop(tmp_path, fake)
    thread = threading.Thread(target=loop.run)
    thread.start()
    deadline = time.monotonic() + 30
    while not (loop._pool and loop._pool.workers) and time.monotonic() < deadline:
        time.sleep(0.02)  # until the unit's worker process runs
    workers = list(loop._pool.workers) if loop._pool else []
    assert workers, "the unit never started"
    loop.stop("interrupted")  # what Ctrl-C does
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert all(w.wait(timeout=5) is not None for w in workers)  # killed, not left running
    assert loop.tally.stopped_because == "interrupted"
    assert market.results == []


def test_a_batch_larger_than_the_cores_is_asked_for_at_once(tmp_path: Path) -> None:
    fake = FakePlatform()
    bodies: list[dict[str, Any]] = []
    market = Market(fake, [[_assignment(40, unit="0"), _assignment(41, unit="1"),
                            _assignment(42, unit="2")], []])
    dispatch = market._dispatch

    def record(request: httpx.Request) -> Any:
        bodies.append(json.loads(request.content))
        return dispatch(request)

    fake.on("POST", "/api/v1/compute/dispatch/", record)
    loop = _loop(tmp_path, fake)
    loop.options = Options(limits=loop.options.limits, batch=3, until_idle=True)
    tally = loop.run()
    assert bodies[0]["max_units"] == 3  # one core, three units held here
    assert (tally.units_run, tally.accepted) == (3, 3), json.dumps(tally.as_json())


def test_the_pool_s_units_share_a_kept_worker_and_a_stop_kills_it(tmp_path: Path) -> None:
    pool = UnitPool(cores=1, sandbox_dir=tmp_path / "sandbox",
                    modules=ModuleStore(tmp_path / "modules", lambda sha: WASM))
    items = [parse_assignment(_assignment(n, unit=str(n), tile=Tile(8 * n, 0, 8, 8)))
             for n in range(3)]
    served_by = []
    for item in items:
        pool.submit(item)
        (finished,) = pool.finished(timeout=60)
        assert finished.result is not None, finished.problem
        assert finished.result.stop.value == "exit"
        served_by.append([w.pid for w in pool.workers])
    assert len(served_by[0]) == 1
    assert served_by[0] == served_by[1] == served_by[2]  # one worker, started once
    (worker,) = pool.workers
    pool.abandon()
    assert worker.wait(timeout=5) is not None
    assert pool.workers == []
