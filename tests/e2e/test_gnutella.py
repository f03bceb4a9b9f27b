"""The pure-P2P fallback with real agents: the platform is stopped, five serving agents
stand in a line, and the buyer's query (TTL 4) finds the source 3 hops away but not the
one 5 hops away; the download then comes from that peer alone."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_sale import _register, _seed
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform, stop_platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Platform]:
    with platform(tmp_path / "site") as running:
        yield running


def test_with_the_platform_down_a_query_finds_sources_within_its_ttl(
    site: Platform, tmp_path: Path
) -> None:
    work = _register(site, "Offline noise", width=640, height=480)
    buyer = AgentProcess(tmp_path, "buyer", site.url)
    buyer.setup("bob", site.logins["bob"])
    buyer.run("buy", work["id"])
    line = [AgentProcess(tmp_path, f"n{i}", site.url) for i in range(1, 6)]
    owners = ["rita", "carol", "rita", "carol", "rita"]
    devices = [agent.setup(user, site.logins[user]) for agent, user in zip(line, owners,
                                                                             strict=True)]
    _seed(line[2], site, work["id"], None)  # 3 hops from the buyer
    _seed(line[4], site, work["id"], None)  # 5 hops from the buyer
    config = buyer.home / "config.json"
    settings = json.loads(config.read_text())
    settings["known_peers"] = [line[0].url]
    config.write_text(json.dumps(settings))

    with contextlib.ExitStack() as daemons:
        # Start from the far end, so each agent's neighbour is up when it starts.
        for index in reversed(range(5)):
            extra = ("--peer", line[index + 1].url) if index < 4 else ()
            daemons.enter_context(line[index].serving(*extra))
        stop_platform(site)
        result = buyer.run("get", work["id"])

    assert result["receipt"] == "pending"  # kept until the platform is back
    assert set(result["served"]) == {devices[2]}
    assert devices[4] not in result["served"]
    _payload_in_offline(Path(result["path"]), buyer)


def _payload_in_offline(output: Path, buyer: AgentProcess) -> None:
    """The watermark check, with the platform down: keys from the agent's own trust store."""
    import time

    import watermark
    from licensing.core import DeviceKeys, KeyRing, read_licence

    ring = KeyRing.from_jwks((buyer.home / "trust" / "jwks.json").read_bytes())
    owned = json.loads(next((buyer.home / "licences").glob("*.json")).read_text())
    licence = read_licence(owned["token"], keyring=ring, now=int(time.time()))
    keys = licence.unwrap_keys(DeviceKeys.load(buyer.home / "device.key"))
    found = watermark.extract_bytes(output.read_bytes(), keys.watermark_key)
    assert found.payload == licence.watermark_payload

