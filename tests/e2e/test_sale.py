"""A sale, end to end, with real processes on loopback: the platform (gunicorn), three
seeding agents holding different pieces, and a buyer agent driven through its CLI."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import AgentHome
from agent.context import Agent
from agent.download import Progress
from agent.library import OwnedLicence
from agent.store import PieceStore
from agent.workflow import GetListener, get_work
from licensing.core import KeyRing, read_licence, read_piece
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.processes import stop
from tests.support.selling import trace_in_portal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("sale")) as running:
        yield running


def _works(site: Platform) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{site.url}/api/v1/works/", timeout=10).json()
    return {w["title"]: w for w in body["results"]}


def _register(site: Platform, title: str, *, width: int, height: int,
              price_minor: int = 900, currency: str = "EUR",
              uses: tuple[str, ...] = ("view", "download")) -> dict[str, Any]:
    """Rita registers a work through the API (a noisy picture: it compresses badly),
    delivered marked by the agent (the sealed sale is tests/e2e/test_sealed_sale.py)."""
    from tests.conftest import png_bytes

    with site.api("rita") as client:
        response = client.post("/api/v1/works/", data={
            "title": title, "price_minor": str(price_minor), "currency": currency,
            "allowed_uses": list(uses), "delivery_mode": "marked"},
            files={"file": ("big.png", png_bytes(width, height, seed=7), "image/png")})
        assert response.status_code == 201, response.text
        work: dict[str, Any] = response.json()
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/works/{work['id']}/").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the work was never packaged"
            time.sleep(0.2)
    return work


def _seed(agent: AgentProcess, site: Platform, work_id: str, pieces: set[int] | None,
          *, corrupt: bool = False) -> None:
    """Give a seeding agent some verified pieces, as if it had downloaded them earlier."""
    with site.api("rita") as client:
        manifest = client.get(f"/api/v1/works/{work_id}/manifest/").json()["token"]
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    store = PieceStore(agent.home / "store")
    work = store.add_work(manifest, keyring=ring, now=int(time.time()))
    ciphertext = site.data_dir / "ciphertext" / f"{work_id}.pmc"
    for index in pieces if pieces is not None else range(work.piece_count):
        assert work.write_piece(index, read_piece(ciphertext, work.manifest, index))
    store.close()
    if corrupt:  # flip a byte of every piece on disk, after it was verified
        path = agent.home / "store" / work.folder.name / "ciphertext"
        data = bytearray(path.read_bytes())
        for index in range(work.piece_count):
            data[work.manifest.piece_offset(index) + 7] ^= 0xFF
        path.write_bytes(bytes(data))


def _payload_in(output: Path, buyer: AgentProcess, site: Platform, licence_id: str) -> int:
    import json

    import watermark
    from licensing.core import DeviceKeys

    owned = json.loads((buyer.home / "licences" / f"{licence_id}.json").read_text())
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    licence = read_licence(owned["token"], keyring=ring, now=int(time.time()))
    keys = licence.unwrap_keys(DeviceKeys.load(buyer.home / "device.key"))
    found = watermark.extract_bytes(output.read_bytes(), keys.watermark_key)
    assert found.found, found
    assert found.payload == licence.watermark_payload
    return int(found.payload)


def test_a_buyer_downloads_from_three_peers_at_once_and_the_copy_names_its_licence(
    site: Platform, tmp_path: Path
) -> None:
    work = _register(site, "Noise in three parts", width=1200, height=900)
    seeders = {name: AgentProcess(tmp_path, name, site.url) for name in ("s1", "s2", "s3")}
    for name, user in (("s1", "carol"), ("s2", "rita"), ("s3", "admin")):
        seeders[name].setup(user, site.logins[user])
    count = httpx.get(f"{site.url}/api/v1/works/{work['id']}/").json()["size_bytes"]
    count = -(-count // (256 * 1024))
    third = count // 3
    # Each holds a third of its own, and one neighbouring piece of another's.
    subsets = {"s1": set(range(third + 1)), "s2": set(range(third, 2 * third + 1)),
               "s3": set(range(2 * third, count)) | {0}}
    for name, subset in subsets.items():
        _seed(seeders[name], site, work["id"], subset)
    buyer = AgentProcess(tmp_path, "bob", site.url)
    buyer.setup("bob", site.logins["bob"])
    buyer.run("wallet", "--topup", "5000", "EUR")

    with seeders["s1"].serving(), seeders["s2"].serving(), seeders["s3"].serving():
        result = buyer.run("get", work["id"])
    assert count >= 9

    output = Path(result["path"])
    assert output.exists()
    assert result["marked"] is True
    assert result["receipt"] == "sent"
    served = result["served"]
    assert len(served) == 3
    assert all(count > 0 for count in served.values())
    assert result["pieces_fetched"] == result["pieces"]
    _payload_in(output, buyer, site, result["licence_id"])
    from PIL import Image

    with Image.open(output) as image:
        assert image.size == (1200, 900)

    # The copy leaks: Rita traces it in the portal, as it was delivered and recompressed.
    report = trace_in_portal(site, "rita", output.read_bytes(), "as-delivered.png")
    assert "Exact delivered copy" in report
    assert result["licence_id"] in report
    assert "<td>bob</td>" in report
    import io

    leaked = io.BytesIO()
    with Image.open(output) as image:
        image.convert("RGB").save(leaked, format="JPEG", quality=85)
    report = trace_in_portal(site, "rita", leaked.getvalue(), "leak.jpg")
    assert "Watermark read: licence named" in report
    assert result["licence_id"] in report


def test_a_peer_serving_corrupt_pieces_is_dropped_and_the_file_is_still_right(
    site: Platform, tmp_path: Path
) -> None:
    # Many pieces (a noisy picture), so that the downloader certainly asks the bad peer
    # for some: a work of one or two pieces may be fetched from the good peer alone.
    work = _register(site, "Noise for a bad peer", width=1200, height=900)
    good, bad = AgentProcess(tmp_path, "good", site.url), AgentProcess(tmp_path, "bad", site.url)
    good.setup("rita", site.logins["rita"])
    bad_id = bad.setup("admin", site.logins["admin"])
    _seed(good, site, work["id"], None)
    _seed(bad, site, work["id"], None, corrupt=True)
    buyer = AgentProcess(tmp_path, "carol", site.url)
    buyer.setup("carol", site.logins["carol"])
    buyer.run("wallet", "--topup", "5000", "EUR")
    with good.serving(), bad.serving():
        result = buyer.run("get", work["id"])
    assert result["marked"] is True
    # Each bad piece is refused at the bad peer, which is dropped after four (trust
    # points): how many it is asked for depends on timing, so either shows it was caught.
    refused = result["refused_pieces"] + result["dropped"]
    assert refused, result
    assert {entry["source"] for entry in refused} == {bad_id}, result
    reasons = " ".join(entry["reason"] for entry in refused)
    assert "hash" in reasons or "bad" in reasons or "corrupt" in reasons, reasons
    _payload_in(Path(result["path"]), buyer, site, result["licence_id"])


def test_a_killed_peer_does_not_stop_the_download_and_a_killed_buyer_resumes(
    site: Platform, tmp_path: Path
) -> None:
    work = _register(site, "Big noise", width=1600, height=1200)
    steady, doomed = (AgentProcess(tmp_path, "steady", site.url),
                      AgentProcess(tmp_path, "doomed", site.url))
    steady.setup("rita", site.logins["rita"])
    doomed.setup("carol", site.logins["carol"])
    _seed(steady, site, work["id"], None)
    _seed(doomed, site, work["id"], None)
    buyer = AgentProcess(tmp_path, "admin", site.url)
    buyer.setup("admin", site.logins["admin"])
    buyer.run("wallet", "--topup", "5000", "EUR")
    buyer.run("buy", work["id"])

    with steady.serving("--limit-rate", "500K"), doomed.serving("--limit-rate", "500K") as dying:
        first = buyer.start("get", work["id"])
        time.sleep(2.0)
        stop(dying, sig=signal.SIGKILL)  # a serving peer dies mid-transfer
        time.sleep(2.0)
        stop(first, sig=signal.SIGKILL)  # and then the buyer, mid-transfer too
        held = PieceStore(buyer.home / "store").summary()
        assert held
        assert 0 < held[0][1] < held[0][2], held
        before = held[0][1]
        result = buyer.run("get", work["id"])
    assert result["held_before"] == before
    assert result["pieces_fetched"] == result["pieces"] - before  # only the missing ones
    _payload_in(Path(result["path"]), buyer, site, result["licence_id"])


def test_a_view_only_licence_keeps_no_copy_and_view_deletes_the_one_it_opens(
    site: Platform, tmp_path: Path
) -> None:
    work = _register(site, "Look but do not keep", width=500, height=400, uses=("view",))
    seeder = AgentProcess(tmp_path, "vseed", site.url)
    seeder.setup("rita", site.logins["rita"])
    _seed(seeder, site, work["id"], None)
    buyer = AgentProcess(tmp_path, "looker", site.url)
    buyer.setup("carol", site.logins["carol"])
    buyer.run("wallet", "--topup", "5000", "EUR")
    with seeder.serving():
        got = buyer.run("get", work["id"])
    assert (got["kept"], got["path"], got["uses"]) == (False, None, ["view"])
    assert got["pieces_fetched"] == got["pieces"]
    library = buyer.home / "library"
    assert not library.exists() or not any(library.iterdir())

    # A "viewer" that keeps what it was shown and where, so the test can look.
    seen, where = tmp_path / "seen.png", tmp_path / "where.txt"
    viewer = f"sh -c 'cp \"$0\" {seen} && printf %s \"$0\" > {where}'"
    viewed = buyer.run("view", work["id"], "--with", viewer, "--no-wait")
    assert viewed["marked"] is True
    assert viewed["receipt"] == "sent"
    shown = Path(where.read_text())
    assert not shown.exists()
    assert not shown.parent.exists()  # the private folder went with it
    _payload_in(seen, buyer, site, viewed["licence_id"])

    again = buyer.run("view", work["id"], "--with", "true", "--no-wait")
    assert again["receipt"] == "sent earlier"  # one receipt per licence

    # Clear errors: a viewer that is not there or fails, a copy the terms do not allow.
    failed = buyer.run("view", work["id"], "--with", "/no/such/viewer", check=False)
    assert failed.returncode == 1
    assert "Could not start the viewer" in failed.stderr
    failed = buyer.run("view", work["id"], "--with", "false", check=False)
    assert "failed (exit code 1)" in failed.stderr
    failed = buyer.run("get", work["id"], "--out", str(tmp_path / "kept.png"), check=False)
    assert "not keeping a copy" in failed.stderr
    assert not (tmp_path / "kept.png").exists()


class _Heard(GetListener):
    """A front end other than the CLI: records what the workflow reports."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def bought(self, owned: OwnedLicence) -> None:
        self.events.append(("bought", owned.work_id))

    def download_started(self, owned: OwnedLicence, total_bytes: int) -> None:
        self.events.append(("started", total_bytes))

    def download_progress(self, step: Progress) -> None:
        self.events.append(("progress", step.bytes_done))

    def download_finished(self) -> None:
        self.events.append(("finished", None))


def test_the_get_workflow_serves_any_front_end_not_only_the_cli(
    site: Platform, tmp_path: Path
) -> None:
    work = _works(site)["Harbour at dawn"]
    seeder = AgentProcess(tmp_path, "wf-seed", site.url)
    seeder.setup("rita", site.logins["rita"])
    _seed(seeder, site, work["id"], None)
    buyer = AgentProcess(tmp_path, "wf-buyer", site.url)
    buyer.setup("carol", site.logins["carol"])
    buyer.run("wallet", "--topup", "5000", "EUR")
    heard = _Heard()

    with seeder.serving():
        done = get_work(Agent(AgentHome(buyer.home)), work["id"], listener=heard)

    assert done.delivery is not None
    assert done.delivery.marked
    assert done.receipt == "sent"
    assert done.download.pieces_fetched == done.manifest.piece_count
    kinds = [kind for kind, _ in heard.events]
    assert kinds[:2] == ["bought", "started"]
    assert kinds[-1] == "finished"
    steps = [value for kind, value in heard.events if kind == "progress"]
    assert steps == sorted(steps)
    assert steps[-1] == heard.events[1][1] == done.manifest.ciphertext_size
    _payload_in(done.delivery.path, buyer, site, done.owned.licence_id)


def test_a_work_bought_on_the_web_is_fetched_by_the_agent_without_a_second_sale(
    site: Platform, tmp_path: Path
) -> None:
    """Carol buys in the portal for the device her agent registered; her agent's `get`
    then finds that licence on the platform and fetches, and nothing is bought twice."""
    import re

    work = _register(site, "Bought on the web", width=400, height=300, price_minor=700)
    seeder = AgentProcess(tmp_path, "s1", site.url)
    seeder.setup("rita", site.logins["rita"])
    _seed(seeder, site, work["id"], None)
    buyer = AgentProcess(tmp_path, "carol", site.url)
    buyer.setup("carol", site.logins["carol"])

    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=True) as browser:
        browser.get("/login/")
        browser.post("/login/", data={
            "username": "carol", "password": site.logins["carol"],
            "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": f"{site.url}/login/"})
        page = browser.get(f"/works/{work['id']}/").text
        assert "Buy for €7.00" in page
        once = re.search(r'name="once" value="([^"]+)"', page)
        device = re.search(r'name="device"[^>]*>\s*<option value="([^"]+)"', page)
        assert once, page[-3000:]
        assert device, page[-3000:]
        form = {"once": once.group(1), "device": device.group(1),
                "expected_price_minor": "700", "expected_currency": "EUR",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        for _ in range(2):  # a double click buys once
            page = browser.post(f"/works/{work['id']}/buy/", data=form,
                                headers={"Referer": f"{site.url}/works/{work['id']}/"}).text
        assert f"peermark-agent get {work['id']}" in page

    with site.api("carol") as client:
        licences = client.get("/api/v1/licences/", params={"work": work["id"]}).json()
    assert len(licences["results"]) == 1
    bought = licences["results"][0]
    assert bought["purchase"]

    with seeder.serving():
        result = buyer.run("get", work["id"])
    assert result["licence_id"] == bought["id"]
    assert result["marked"] is True
    assert result["receipt"] == "sent"
    with site.api("carol") as client:
        purchases = [p for p in client.get("/api/v1/purchases/").json()["results"]
                     if p["work"] == work["id"]]
    assert len(purchases) == 1


# --- the index fast path (issue 23) -------------------------------------------------------


@pytest.fixture(scope="module")
def indexed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform offering agents the index fast path (``python -m peerindex``, two
    processes, on the platform's Redis)."""
    with platform(tmp_path_factory.mktemp("indexed-sale"), celery=True, index=True) as running:
        yield running


def test_a_sale_whose_announces_and_lookups_take_the_index_fast_path(
    indexed_site: Platform, tmp_path: Path
) -> None:
    """Two seeders announce and heartbeat through the index, the buyer asks it for
    sources, and nothing of theirs goes to the platform's own peer endpoints (the
    fallback): told apart in Redis's MONITOR, since both paths run the same scripts on
    the same keys (tests/index/monitor.py)."""
    import redis

    from tests.index.conftest import bits
    from tests.index.monitor import RedisMonitor
    from tests.support.processes import wait_until

    site = indexed_site
    conn = redis.Redis.from_url(site.env["REDIS_URL"], socket_timeout=5)
    work = _register(site, "Noise by the fast path", width=800, height=600)
    work_id = work["id"]
    # The index refuses a work it does not know; the platform publishes a work that
    # became ready at its minute's sync at the latest (tests/index/test_publishing.py).
    wait_until(lambda: bool(conn.hexists("pmi:works", work_id)), timeout=90,
               what="the index to know the work")
    seeders = {name: AgentProcess(tmp_path, name, site.url) for name in ("fast1", "fast2")}
    devices = {name: seeders[name].setup(user, site.logins[user])
               for name, user in (("fast1", "carol"), ("fast2", "rita"))}
    size = httpx.get(f"{site.url}/api/v1/works/{work_id}/").json()["size_bytes"]
    count = -(-size // (256 * 1024))
    assert count >= 4
    half = count // 2
    subsets = {"fast1": set(range(half + 1)), "fast2": set(range(half, count))}
    for name, subset in subsets.items():
        _seed(seeders[name], site, work_id, subset)
    buyer = AgentProcess(tmp_path, "fastbuyer", site.url)
    buyer.setup("bob", site.logins["bob"])
    buyer.run("wallet", "--topup", "5000", "EUR")

    with (RedisMonitor(site.env["REDIS_URL"]) as monitor, seeders["fast1"].serving(),
          seeders["fast2"].serving()):
        held = {name: (conn.zscore(f"pmi:w:{work_id}", device),
                       conn.hget(f"pmi:pb:{device}", work_id))
                for name, device in devices.items()}
        result = buyer.run("get", work_id)

    # The index's Redis holds what each seeder announced (by hand: the pieces it was
    # given, and their bitfield since neither holds them all).
    assert held == {name: (len(subsets[name]), bits(count, subsets[name]).encode())
                    for name in subsets}
    # An agent that turned to the platform says why in its log: that first.
    fallback = ("the index failed", "the index asks to wait", "no index credential",
                "the index refused")
    for agent in (*seeders.values(), buyer):
        text = agent.log.read_text(errors="replace")
        assert not [line for line in fallback if line in text], (agent.name, text[-3000:])
    index = monitor.index_clients()
    assert index, "no index process was seen polling Redis"
    lookup = f"ZREVRANGE pmi:w:{work_id} "  # a lookup's first command
    for device in devices.values():
        announce = f"pmi:p:{device} "  # an announce's first key (script or MULTI)
        assert monitor.mentioning(announce, clients=index), (
            "not announced by the index", index,
            [(seen.client, seen.command[:120])
             for seen in monitor.mentioning(announce, clients=index, others=True)])
        assert not monitor.mentioning(announce, clients=index, others=True), \
            "announced by the platform's own endpoint (the fallback)"
    assert monitor.mentioning(lookup, clients=index), "sources not asked of the index"
    assert not monitor.mentioning(lookup, clients=index, others=True), \
        "sources asked of the platform's own endpoint (the fallback)"

    assert result["marked"] is True
    assert result["pieces_fetched"] == result["pieces"] == count
    assert set(result["served"]) == set(devices.values())
    assert all(pieces > 0 for pieces in result["served"].values())
    _payload_in(Path(result["path"]), buyer, site, result["licence_id"])
