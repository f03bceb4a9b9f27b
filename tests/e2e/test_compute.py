"""The compute market end to end, with real processes on loopback: the platform
(gunicorn), a customer on the API, and contributing agents run as a member would run
them (``contribute``), one of them a cheater.

What is checked comes from outside the platform's own arithmetic: the picture against a
native build of the same C, the payments against this file's own largest-remainder
split of fuel x price, the results each agent says it returned (its results log).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from compute.demo import BUILD_SCRIPT, RENDER_WASM, Tile, assemble, tile_input, tiles
from tests.conftest import _skip_or_fail
from tests.support.agents import AgentProcess, contribute, summary_of
from tests.support.platform import Platform, platform
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRICE = 5_000_000  # minor units per 10^12 fuel: a few euros for the small picture
SCALE = 10**12 * 10**4  # exact accruals: 10^-16 minor units (fuel x price x basis points)
CONTRIBUTE = ("--cores", "1", "--batch", "1", "--memory-mib", "128")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("compute")) as running:
        yield running


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The renderer's C built natively (clang -O2, the same flags) by build.sh."""
    import shutil

    if shutil.which("clang") is None:
        _skip_or_fail("clang is not installed (apt-get install clang): the picture cannot "
                      "be compared with a native render")
    binary = tmp_path_factory.mktemp("native") / "render"
    subprocess.run([str(BUILD_SCRIPT), "--native", str(binary)], check=True, timeout=120)
    return binary


def _native_render(binary: Path, width: int, height: int, samples: int) -> bytes:
    header = tile_input(width, height, Tile(0, 0, width, height), samples=samples)
    return subprocess.run([str(binary)], input=header, capture_output=True, check=True,
                          timeout=120).stdout


def _module(client: httpx.Client) -> str:
    response = client.post("/api/v1/compute/modules/",
                           files={"module": ("render.wasm", RENDER_WASM.read_bytes(),
                                             "application/wasm")})
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])


def _submit(client: httpx.Client, module: str, *, width: int, height: int, tile: int,
            samples: int, unit_seconds: int = 120, name: str = "",
            price: int = PRICE) -> dict[str, Any]:
    """A render job as the portal's demo builds one: a tile a unit, its header the input."""
    cover = tiles(width, height, tile, tile)
    units = [{"input": base64.b64encode(tile_input(width, height, t, samples=samples)).decode(),
              "fuel": 2_000_000 + 10_000 * t.width * t.height * samples,
              "label": f"tile-{t.x}-{t.y}"} for t in cover]
    response = client.post("/api/v1/compute/jobs/",
                           headers={"Idempotency-Key": os.urandom(8).hex()},
                           json={"name": name or f"render {width}x{height}", "module": module,
                                 "currency": "EUR", "price_per_tfuel_minor": price,
                                 "unit_seconds": unit_seconds, "memory_bytes": 64 * 2**20,
                                 "output_bytes": tile * tile * 3, "units": units})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/compute/jobs/{job_id}/").json())


def _units(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    body = client.get(f"/api/v1/compute/jobs/{job_id}/units/", params={"page_size": 100}).json()
    assert body["next"] is None
    return list(body["results"])


def _picture(client: httpx.Client, job_id: str, *, width: int, height: int,
             tile: int) -> bytes:
    archive = client.get(f"/api/v1/compute/jobs/{job_id}/results.zip")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as folder:
        manifest = json.loads(folder.read("manifest.json"))
        outputs = {u["seq"]: folder.read(u["file"]) for u in manifest["units"]}
    return assemble(width, height, [(t, outputs[seq])
                                    for seq, t in enumerate(tiles(width, height, tile, tile))])


def _balance(client: httpx.Client, kind: str, currency: str = "EUR") -> int:
    balances = client.get("/api/v1/wallet/").json()["balances"]
    return sum(int(b["balance_minor"]) for b in balances
               if b["kind"] == kind and b["currency"] == currency)


def _log(agent: AgentProcess, name: str = "results.jsonl") -> list[dict[str, Any]]:
    path = agent.home / "compute" / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _standing(client: httpx.Client, device: str) -> dict[str, Any]:
    body = client.get("/api/v1/compute/contributors/").json()
    (row,) = [c for c in body["results"] if c["device"] == device]
    return dict(row)


def expected_split(agreed_fuel: dict[int | None, list[int]], *, price: int,
                   fee_parts: list[int], fee_bps: int) -> dict[int | None, int]:
    """What each party of a job is paid: its exact value (fuel x price / 10^12 for each
    agreeing result of a member's; the fee, fee_bps of each device's value, for the
    platform, ``None``) rounded down, then the whole units left over after the floors,
    one each, to the largest fractional remainders (ties: members by id, then the
    platform). Written here from the rules in docs/COMPUTE.md, not from pricing.py."""
    exact = {party: sum(fuel) * price * 10_000 for party, fuel in agreed_fuel.items()}
    exact[None] = sum(fee_parts) * price * fee_bps
    floors = {party: value // SCALE for party, value in exact.items()}
    remainders = {party: value % SCALE for party, value in exact.items()}
    left = sum(remainders.values()) // SCALE
    order = [*sorted(p for p in exact if p is not None), None]
    ranked = sorted(order, key=lambda p: (-remainders[p], order.index(p)))
    for party in ranked[:left]:
        if remainders[party]:
            floors[party] += 1
    return floors


def test_three_members_render_a_picture_one_cheats_and_is_caught_and_unpaid(
        site: Platform, native: Path, tmp_path: Path) -> None:
    width, height, tile, samples = 96, 64, 16, 4
    people = {"carol": "honest-1", "rita": "honest-2", "admin": "cheater"}
    agents = {user: AgentProcess(tmp_path, name, site.url) for user, name in people.items()}
    devices = {user: agent.setup(user, site.logins[user]) for user, agent in agents.items()}
    ids = site.query("import json\nfrom exchange.accounts.models import User\n"
                     "print(json.dumps({u.username: u.pk for u in User.objects.all()}))")
    clients = {user: site.api(user) for user in (*people, "bob")}
    bob = clients["bob"]
    wallet_before = _balance(bob, "wallet")
    credit_before = {user: _balance(clients[user], "compute") for user in people}

    module = _module(bob)
    job = _submit(bob, module, width=width, height=height, tile=tile, samples=samples)
    assert job["state"] == "running"
    assert _balance(bob, "wallet") == wallet_before - job["budget_minor"]

    # All three until the platform has no work for them; a cheater's wrong result
    # reopens its unit for a third member, who may already have stopped: the honest two
    # then run again until the job is done. The cheater starts first and the honest two
    # join once it has lied about a unit: started together, they could take every unit
    # of this small job before the cheater's own start-up is over.
    cheater = contribute(agents["admin"], "--until-idle", *CONTRIBUTE,
                         module="tests.support.cheating_contributor")
    lied = agents["admin"].home / "compute" / "cheated.jsonl"
    wait_until(lambda: lied.exists() and lied.read_text().endswith("\n"), timeout=120,
               what="the cheater to run a unit", log=agents["admin"].log)
    rounds = [{"admin": cheater, **{user: contribute(agents[user], "--until-idle", *CONTRIBUTE)
                                    for user in ("carol", "rita")}}]
    summaries: list[dict[str, dict[str, Any]]] = [
        {user: summary_of(process, timeout=300) for user, process in rounds[0].items()}]
    while _job(bob, job["id"])["state"] == "running" and len(summaries) < 6:
        again = {user: contribute(agents[user], "--until-idle", *CONTRIBUTE)
                 for user in ("carol", "rita")}
        summaries.append({user: summary_of(p, timeout=300) for user, p in again.items()})

    done = _job(bob, job["id"])
    assert done["state"] == "completed", done
    assert done["progress"]["units"]["validated"] == len(tiles(width, height, tile, tile))

    # The picture is the native render, byte for byte.
    picture = _picture(bob, job["id"], width=width, height=height, tile=tile)
    assert picture == _native_render(native, width, height, samples)

    # What each agent says it returned, and what the platform made of it.
    logs = {user: _log(agent) for user, agent in agents.items()}
    lies = {(c["job"], c["unit"]) for c in _log(agents["admin"], "cheated.jsonl")}
    assert lies, "the cheater ran no unit"
    accepted = {user: [e for e in log if e["job"] == job["id"] and e["status"] == "accepted"]
                for user, log in logs.items()}
    cheater_lies = [e for e in accepted["admin"] if (e["job"], e["unit"]) in lies]
    cheater_honest = [e for e in accepted["admin"] if (e["job"], e["unit"]) not in lies]
    assert cheater_lies, "none of the cheater's wrong results reached the quorum"
    assert summaries[0]["admin"]["stopped_because"] in ("idle", "contributor_suspended")
    for user in ("carol", "rita"):
        for summary in (s[user] for s in summaries if user in s):
            assert summary["stopped_because"] == "idle", summary
            assert summary["rejected"] == summary["rejected_reasons"].get("unit_closed", 0)

    # Standing: the cheater's lies disagreed, every honest result agreed.
    cheater = _standing(clients["admin"], devices["admin"])
    assert cheater["disagreed"] == len(cheater_lies) >= 1
    assert cheater["agreed"] == len(cheater_honest)
    assert cheater["suspended"] == (len(cheater_lies) >= 5)
    for user in ("carol", "rita"):
        standing = _standing(clients[user], devices[user])
        assert (standing["agreed"], standing["disagreed"]) == (len(accepted[user]), 0), user

    # Payment, recomputed from the units' agreed fuel and who agreed.
    fuel = {str(u["seq"]): int(u["fuel"]) for u in _units(bob, job["id"])}
    agreeing = {user: cheater_honest if user == "admin" else accepted[user] for user in people}
    agreed_fuel: dict[int | None, list[int]] = {
        ids[user]: [fuel[e["unit"]] for e in agreeing[user]] for user in people}
    for user in people:
        assert all(e["fuel"] == fuel[e["unit"]] for e in accepted[user]
                   if (e["job"], e["unit"]) not in lies), user
    agreeing_per_unit = Counter(e["unit"] for user in people for e in agreeing[user])
    assert set(agreeing_per_unit.values()) == {2}  # replication 2: two agreeing devices a unit
    split = expected_split({p: f for p, f in agreed_fuel.items() if f}, price=PRICE,
                           fee_parts=[2 * fuel[seq] for seq in agreeing_per_unit],
                           fee_bps=int(done["fee_bps"]))
    for user in people:
        credit = _balance(clients[user], "compute") - credit_before[user]
        assert credit == split.get(ids[user], 0), user
    charged = sum(split.values())
    assert done["budget_minor"] - done["refunded_minor"] == charged
    assert done["progress"]["spent_minor"] == charged
    assert _balance(bob, "wallet") == wallet_before - charged  # the rest of the budget is back
    assert site.books() == []
    ledger = site.query("import json\nfrom django.db.models import Sum\n"
                        "from exchange.ledger.models import Account, Posting\n"
                        "print(json.dumps([Posting.objects.aggregate(t=Sum('amount'))['t'], "
                        "Account.objects.filter(kind='escrow').exclude(balance=0).count()]))")
    assert ledger == [0, 0]
    for client in clients.values():
        client.close()


def _workers_of(process: subprocess.Popen[bytes]) -> list[int]:
    """The sandbox's worker processes in this agent's session (it has its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != process.pid:
                continue
            command = (entry / "cmdline").read_bytes()
        except (OSError, ProcessLookupError):
            continue
        if b"compute.worker_main" in command:
            found.append(int(entry.name))
    return found


def test_a_contributor_killed_mid_unit_loses_it_to_another_device_after_its_deadline(
        site: Platform, native: Path, tmp_path: Path) -> None:
    width, height, tile, samples = 192, 96, 96, 1024  # two units of a second or two each
    victim = AgentProcess(tmp_path, "victim", site.url)
    victim_device = victim.setup("admin", site.logins["admin"])
    others = {user: AgentProcess(tmp_path, f"steady-{user}", site.url)
              for user in ("carol", "rita")}
    for user, agent in others.items():
        agent.setup(user, site.logins[user])
    with site.api("bob") as bob, site.api("admin") as admin:
        job = _submit(bob, _module(bob), width=width, height=height, tile=tile,
                      samples=samples, unit_seconds=10, name="render, one device killed",
                      price=2_000)

        process = contribute(victim, *CONTRIBUTE)
        wait_until(lambda: bool(_workers_of(process)) and _job(bob, job["id"])["progress"]
                   ["outstanding"] >= 1, timeout=60, what="the victim to start a unit",
                   log=victim.log, interval=0.05)
        time.sleep(0.3)
        assert _workers_of(process), "the victim's unit ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        held = [e for e in _log(victim) if e["job"] == job["id"]]
        assert held == []  # it returned nothing

        steady = {user: contribute(agent, *CONTRIBUTE) for user, agent in others.items()}
        try:
            wait_until(lambda: _job(bob, job["id"])["state"] != "running", timeout=180,
                       what="the job to complete without the killed device",
                       log=site.logs / "server.log", interval=0.5)
        finally:
            for running in steady.values():
                if running.poll() is None:
                    running.send_signal(signal.SIGINT)  # Ctrl-C
        # wide: on a loaded machine a contributor may be mid-request when Ctrl-C comes
        summaries = {user: summary_of(p, timeout=180) for user, p in steady.items()}
        assert all(p.returncode == 0 for p in steady.values())
        assert {s["stopped_because"] for s in summaries.values()} == {"interrupted"}

        done = _job(bob, job["id"])
        assert done["state"] == "completed", done
        assert _picture(bob, job["id"], width=width, height=height, tile=tile) == (
            _native_render(native, width, height, samples))
        standing = _standing(admin, victim_device)
        assert standing["expired"] >= 1
        assert (standing["agreed"], standing["disagreed"]) == (0, 0)
        replicas = [u["replicas"] for u in _units(bob, job["id"])]
        assert sum(replicas) == 2 * len(replicas) + standing["expired"]
    assert site.books() == []
