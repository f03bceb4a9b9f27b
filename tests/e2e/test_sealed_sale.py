"""A sealed picture, end to end, with real processes on loopback (docs/SEALED.md).

Rita registers a picture for sealed delivery; Bob's agent buys it, fetches the sealed
container's pieces from a seeding agent and its personal table from the platform, and
writes the unsealed copy: marked, the receipt says so, and the platform's audit makes
the very same bytes. A leaked, recompressed copy is traced in the portal to Bob.

Then Carol runs an agent patched to skip every marking step it can
(tests/support/skipping_buyer.py): what it writes without its table is not a picture at
all, and with a table emptied of marks is noise, nowhere near the master; the one usable
copy it can make (its own table applied) traces to Carol's licence.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from exchange.catalogue.demo_images import demo_image_png
from tests.support.agents import AgentProcess, start_module
from tests.support.platform import Platform, platform
from tests.support.selling import seed_all, trace_in_portal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER = demo_image_png(seed=31, width=640, height=480)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("sealed")) as running:
        yield running


@pytest.fixture(scope="module")
def work(site: Platform) -> dict[str, Any]:
    """Rita registers the picture through the API, sealed, and waits for its packaging."""
    with site.api("rita") as client:
        response = client.post("/api/v1/works/", data={
            "title": "Lighthouse (sealed)", "price_minor": "600", "currency": "EUR",
            "allowed_uses": ["view", "download"], "delivery_mode": "sealed"},
            files={"file": ("lighthouse.png", MASTER, "image/png")})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        assert body["delivery_mode"] == "sealed"
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/works/{body['id']}/").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the work was never packaged"
            time.sleep(0.2)
    return body


def _receipt_and_audit(site: Platform, licence_id: str) -> tuple[dict[str, Any], str]:
    """The receipt as the platform holds it, and the marking audit's verdict on it."""
    found = site.query(
        "import json; from exchange.metering.models import Receipt; "
        "from exchange.tracing.marking_checks import receipt_marking_check; "
        f"receipt = Receipt.objects.get(licence_id='{licence_id}'); "
        "check = receipt_marking_check(receipt=receipt); "
        "print(json.dumps([{'marked': receipt.marked, 'output_sha256': receipt.output_sha256},"
        " check.verdict, check.expected_sha256]))")
    receipt, verdict, expected = found
    return {**receipt, "expected_sha256": expected}, verdict


def _leak(data: bytes) -> bytes:
    """What a leaker does: re-save as JPEG."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


def _psnr(copy: bytes) -> float:
    a = np.asarray(Image.open(io.BytesIO(copy)).convert("RGB"), np.float64)
    b = np.asarray(Image.open(io.BytesIO(MASTER)).convert("RGB"), np.float64)
    return float(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


def test_a_sealed_picture_is_sold_delivered_marked_audited_and_traced(
    site: Platform, work: dict[str, Any], tmp_path: Path
) -> None:
    seeder = AgentProcess(tmp_path, "seed", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    buyer = AgentProcess(tmp_path, "bob", site.url)
    buyer.setup("bob", site.logins["bob"])
    with seeder.serving():
        result = buyer.run("get", work["id"])
    assert result["marked"] is True, result
    assert result["receipt"] == "sent"

    delivered = Path(result["path"]).read_bytes()
    with Image.open(io.BytesIO(delivered)) as image:
        assert (image.format, image.size) == ("PNG", (640, 480))
    assert delivered != MASTER
    assert _psnr(delivered) >= 38
    # Nothing but the copy in the library: no container, no temporary file.
    assert [p.name for p in Path(result["path"]).parent.iterdir()] == [
        Path(result["path"]).name]

    receipt, verdict = _receipt_and_audit(site, result["licence_id"])
    digest = hashlib.sha256(delivered).hexdigest()
    assert receipt["marked"] is True
    assert receipt["output_sha256"] == digest == receipt["expected_sha256"]
    assert verdict == "matches"

    report = trace_in_portal(site, "rita", _leak(delivered), "leak.jpg")
    assert "Watermark read: licence named" in report
    assert result["licence_id"] in report
    assert "<td>bob</td>" in report
    assert "Licences tested (sealed delivery)" in report


def _skipping_get(site: Platform, tmp_path: Path, name: str, work_id: str, cheat: str,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[AgentProcess, dict[str, Any]]:
    """Carol, on a fresh device, runs the patched agent's `get`."""
    buyer = AgentProcess(tmp_path, name, site.url)
    buyer.setup("carol", site.logins["carol"])
    with monkeypatch.context() as patched:
        patched.setenv("PEERMARK_CHEAT", cheat)
        process = start_module(buyer, "tests.support.skipping_buyer", "get", work_id)
        out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, buyer.log.read_text()[-3000:]
    return buyer, json.loads(out)


def test_an_agent_patched_to_skip_marking_gets_no_usable_unmarked_copy(
    site: Platform, work: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeder = AgentProcess(tmp_path, "seed2", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    with seeder.serving():
        raw_buyer, raw = _skipping_get(site, tmp_path, "carol-raw", work["id"], "container",
                                       monkeypatch)
        _zero_buyer, zero = _skipping_get(site, tmp_path, "carol-zero", work["id"],
                                          "zero-table", monkeypatch)

    # Without its table: the decrypted pieces are the sealed container, not a picture.
    written = Path(raw["path"]).read_bytes()
    assert written != MASTER
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(written))
    # With the marks taken out of its table: the master stays under the noise.
    assert _psnr(Path(zero["path"]).read_bytes()) < 12

    # The cheat lied in its receipts; the platform's audit flags both.
    for result in (raw, zero):
        receipt, verdict = _receipt_and_audit(site, result["licence_id"])
        assert receipt["output_sha256"] != receipt["expected_sha256"]
        assert verdict == "differs"

    # The one usable copy it can make is its own marked one, and that names Carol.
    usable = (raw_buyer.home / "honest.out").read_bytes()
    assert _psnr(usable) >= 38
    report = trace_in_portal(site, "rita", _leak(usable), "found-online.jpg")
    assert "Watermark read: licence named" in report
    assert raw["licence_id"] in report
    assert "<td>carol</td>" in report
    assert "<td>bob</td>" not in report.split("Licences tested")[0]
    assert httpx.get(f"{site.url}/api/v1/works/{work['id']}/").json()["delivery_mode"] == \
        "sealed"
