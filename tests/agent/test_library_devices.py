"""One library on every device, with real agents against a real platform on loopback:
Bob buys on his laptop, his desktop's `get` has its own licence re-issued without
paying (`library --add` does the same on its own), lists its devices (`library --devices`), and a
third device takes the laptop's place (`library --move-here`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from licensing.core import DeviceKeys, KeyRing, read_licence
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.selling import seed_all

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("library")) as running:
        yield running


def _register(site: Platform) -> dict[str, Any]:
    from tests.conftest import png_bytes

    with site.api("rita") as client:
        response = client.post("/api/v1/works/", data={
            "title": "Harbour on three devices", "price_minor": "700", "currency": "EUR",
            "allowed_uses": ["view", "download"], "delivery_mode": "marked",
            "device_limit": "2"},
            files={"file": ("harbour.png", png_bytes(480, 360, seed=11), "image/png")})
        assert response.status_code == 201, response.text
        work: dict[str, Any] = response.json()
        assert work["terms"]["device_limit"] == 2
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/works/{work['id']}/").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the work was never packaged"
            time.sleep(0.2)
    return work


def _payload(agent: AgentProcess, site: Platform, licence_id: str) -> int:
    owned = json.loads((agent.home / "licences" / f"{licence_id}.json").read_text())
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    licence = read_licence(owned["token"], keyring=ring, now=int(time.time()))
    licence.unwrap_keys(DeviceKeys.load(agent.home / "device.key"))  # its own keys
    return int(licence.watermark_payload)


def _wallet(agent: AgentProcess) -> Any:
    return agent.run("wallet")


def test_a_second_device_gets_the_work_without_paying(site: Platform, tmp_path: Path) -> None:
    work = _register(site)
    seeder = AgentProcess(tmp_path, "seeder", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    laptop = AgentProcess(tmp_path, "laptop", site.url)
    laptop.setup("bob", site.logins["bob"])
    laptop.run("wallet", "--topup", "5000", "EUR")
    desktop = AgentProcess(tmp_path, "desktop", site.url)
    desktop_id = desktop.setup("bob", site.logins["bob"])

    with seeder.serving():
        bought = laptop.run("get", work["id"])
        paid = _wallet(laptop)
        # `get` on the second device finds the member's licence and has one re-issued
        fetched = desktop.run("get", work["id"])
        added = desktop.run("library", "--add", work["id"])  # already there: the same one
        rebought = desktop.run("buy", work["id"])  # `buy` knows the member owns it too
    assert _wallet(laptop) == paid  # the second device paid nothing
    assert fetched["licence_id"] == added["licence_id"] != bought["licence_id"]
    assert rebought["licence_id"] == added["licence_id"]
    assert Path(fetched["path"]).exists()
    assert fetched["receipt"] == "sent"
    assert _payload(desktop, site, added["licence_id"]) != _payload(laptop, site,
                                                                    bought["licence_id"])

    listed = desktop.run("library", "--devices")
    assert listed["this_device"] == desktop_id
    (entry,) = [w for w in listed["works"] if w["work"] == work["id"]]
    assert (entry["devices_used"], entry["device_limit"]) == (2, 2)
    marks = {lic["device_name"]: lic["this_device"] for lic in entry["licences"]}
    assert marks == {"laptop": False, "desktop": True}

    # At the limit, a third device is refused with the limit named ...
    tablet = AgentProcess(tmp_path, "tablet", site.url)
    tablet.setup("bob", site.logins["bob"])
    for command in (("get", work["id"]), ("buy", work["id"]), ("library", "--add", work["id"])):
        refused = tablet.run(*command, check=False)
        assert refused.returncode == 1
        assert "at most 2" in refused.stderr
    assert _wallet(laptop) == paid  # neither `get` nor `buy` bought the work a second time
    # ... and takes the laptop's place instead: the laptop's licence is revoked.
    moved = tablet.run("library", "--move-here", bought["licence_id"])
    assert moved["revoked"] == bought["licence_id"]
    with seeder.serving():
        on_tablet = tablet.run("get", work["id"])
    assert on_tablet["licence_id"] == moved["licence_id"]
    again = tablet.run("library", "--move-here", bought["licence_id"], check=False)
    assert again.returncode == 1
    assert "revoked" in again.stderr
