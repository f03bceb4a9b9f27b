"""Members' services end to end, with real agents and a real server on loopback
(docs/MEMBERS.md): Bob's agent follows Rita; Rita registers a new work; Bob's agent's
`status` tells him; his laptop buys and fetches it from a seeding peer; his desktop's
`get` has a licence of its own re-issued (no second payment, its own watermark payload);
Bob reviews the work, Rita is told, and the review is on the work's public page.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import png_bytes
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.selling import seed_all

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("members")) as running:
        yield running


def _register(site: Platform, title: str) -> dict[str, Any]:
    with site.api("rita") as client:
        response = client.post("/api/v1/works/", data={
            "title": title, "price_minor": "1500", "currency": "KRW",
            "allowed_uses": ["view", "download"], "delivery_mode": "marked"},
            files={"file": ("dawn.png", png_bytes(400, 300, seed=5), "image/png")})
        assert response.status_code == 201, response.text
        work: dict[str, Any] = response.json()
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/works/{work['id']}/").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the work was never packaged"
            time.sleep(0.2)
    return work


def _notified(site: Platform, username: str, kind: str, needle: str) -> dict[str, Any]:
    """The member's notification of ``kind`` mentioning ``needle`` (a work's id or title),
    waited for: the new-work announcement is a task queued on commit."""
    deadline = time.monotonic() + 30
    with site.api(username) as client:
        while True:
            found = [n for n in client.get("/api/v1/notifications/").json()["results"]
                     if n["kind"] == kind and (needle in n["url"] or needle in n["title"])]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"{username} was never told ({kind})"
            time.sleep(0.2)


def test_follow_notify_buy_second_device_and_review(site: Platform, tmp_path: Path) -> None:
    laptop = AgentProcess(tmp_path, "laptop", site.url)
    laptop.setup("bob", site.logins["bob"])
    followed = laptop.run("follow", "rita")
    assert followed["username"] == "rita"

    work = _register(site, "새벽의 항구 (Harbour at first light)")
    note = _notified(site, "bob", "new_work", work["id"])
    status = laptop.run("status")
    assert status["notifications_unread"] >= 1
    assert note["id"] in [n["id"] for n in status["notifications"]]
    with site.api("bob") as client:
        feed = client.get("/api/v1/feed/").json()["results"]
    assert work["id"] in [w["id"] for w in feed]

    seeder = AgentProcess(tmp_path, "seeder", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    laptop.run("wallet", "--topup", "50000", "KRW")
    desktop = AgentProcess(tmp_path, "desktop", site.url)
    desktop.setup("bob", site.logins["bob"])
    with seeder.serving():
        bought = laptop.run("get", work["id"])
        paid = laptop.run("wallet")
        second = desktop.run("get", work["id"])
    assert (bought["marked"], second["marked"]) == (True, True)
    assert second["licence_id"] != bought["licence_id"]
    assert laptop.run("wallet") == paid  # the second device paid nothing
    assert Path(second["path"]).read_bytes() != Path(bought["path"]).read_bytes()
    devices = desktop.run("library", "--devices")
    (entry,) = [w for w in devices["works"] if w["work"] == work["id"]]
    assert entry["devices_used"] == 2

    with site.api("bob") as client:
        review = client.post(f"/api/v1/works/{work['id']}/reviews/",
                             json={"rating": 5, "body": "선명하고 아름답습니다. <b>Lovely</b>."},
                             headers={"Idempotency-Key": str(uuid.uuid4())})
    assert review.status_code == 201, review.text
    _notified(site, "rita", "review", work["title"])
    page = httpx.get(f"{site.url}/works/{work['id']}/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "선명하고 아름답습니다. &lt;b&gt;Lovely&lt;/b&gt;." in page.text
