"""A video and a PDF, end to end, with real processes on loopback: Rita registers both
through the API, Bob's agent buys and fetches them from a seeding agent, delivers each
marked in its own format (the receipt says so, and the platform's marking audit makes
the very same bytes), and leaked copies (a re-encoded excerpt of the video; two pages of
the PDF, re-saved) are traced in the portal by Rita to Bob's licence."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pikepdf
import pytest

from licensing.core import DeviceKeys, KeyRing, read_licence
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.selling import seed_all, trace_in_portal
from tests.watermark import pdf_documents, video_attacks, video_clips
from watermark.document.pdf import extract_pdf_bytes
from watermark.video import extract_video_bytes, probe_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("media")) as running:
        yield running


def _register(site: Platform, title: str, name: str, data: bytes, content_type: str
              ) -> dict[str, Any]:
    """Rita registers a work through the API and waits until it is packaged."""
    with site.api("rita") as client:
        response = client.post("/api/v1/works/", data={
            "title": title, "price_minor": "700", "currency": "EUR",
            "allowed_uses": ["view", "download"]},
            files={"file": (name, data, content_type)})
        assert response.status_code == 201, response.text
        work: dict[str, Any] = response.json()
        deadline = time.monotonic() + 120
        while client.get(f"/api/v1/works/{work['id']}/").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the work was never packaged"
            time.sleep(0.2)
    assert work["content_type"] == content_type
    return work


def _watermark_key(buyer: AgentProcess, site: Platform, licence_id: str) -> tuple[bytes, int]:
    owned = json.loads((buyer.home / "licences" / f"{licence_id}.json").read_text())
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    licence = read_licence(owned["token"], keyring=ring, now=int(time.time()))
    keys = licence.unwrap_keys(DeviceKeys.load(buyer.home / "device.key"))
    return keys.watermark_key, licence.watermark_payload


def _audited(site: Platform, licence_id: str, delivered: bytes) -> None:
    """The receipt says marked, for exactly these bytes, and the audit makes them too."""
    receipts = site.query(
        "import json; from exchange.metering.models import Receipt; print(json.dumps(list("
        f"Receipt.objects.filter(licence_id='{licence_id}')"
        ".values('marked', 'output_sha256'))))")
    assert receipts == [{"marked": True, "output_sha256": hashlib.sha256(delivered).hexdigest()}]
    verdict = site.query(
        "import json; from exchange.metering.models import Receipt; "
        "from exchange.tracing.marking_checks import receipt_marking_check; "
        f"receipt = Receipt.objects.get(licence_id='{licence_id}'); "
        "print(json.dumps(receipt_marking_check(receipt=receipt).verdict))")
    assert verdict == "matches"


def _bought(site: Platform, tmp_path: Path, work: dict[str, Any], name: str
            ) -> tuple[AgentProcess, dict[str, Any]]:
    seeder = AgentProcess(tmp_path, f"seed-{name}", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    buyer = AgentProcess(tmp_path, f"bob-{name}", site.url)
    buyer.setup("bob", site.logins["bob"])  # the demo's top-up pays for it
    with seeder.serving():
        result = buyer.run("get", work["id"])
    assert result["marked"] is True, result
    assert result["receipt"] == "sent"
    return buyer, result


def test_a_bought_video_is_delivered_marked_and_a_leaked_excerpt_names_its_buyer(
    site: Platform, tmp_path: Path
) -> None:
    master = video_clips.make_clip("ken_burns", width=640, height=360, fps=30, seconds=8.0,
                                   container="mp4", seed=21)
    work = _register(site, "Harbour walk (video)", "walk.mp4", master, "video/mp4")
    buyer, result = _bought(site, tmp_path, work, "video")

    # Delivered marked, as an MP4 of the master's size, rate and length, with its sound.
    delivered = Path(result["path"]).read_bytes()
    given, copy = probe_video(master), probe_video(delivered)
    assert (copy.format, copy.width, copy.height) == ("MP4", 640, 360)
    assert copy.fps == pytest.approx(30.0)
    assert copy.duration_seconds == pytest.approx(given.duration_seconds, abs=0.1)
    assert (copy.video_codec, copy.audio_codec) == (given.video_codec, given.audio_codec)
    key, payload = _watermark_key(buyer, site, result["licence_id"])
    blind = extract_video_bytes(delivered, key)
    assert (blind.found, blind.payload) == (True, payload)
    _audited(site, result["licence_id"], delivered)

    # It leaks: 5 s from mid-GOP, then scaled down and re-encoded. Rita traces it.
    leaked = video_attacks.downscale(video_attacks.excerpt(delivered, 1.7, 5.0), height=240)
    report = trace_in_portal(site, "rita", leaked, "leak.mp4")
    assert "Watermark read: licence named" in report
    assert result["licence_id"] in report
    assert "<td>bob</td>" in report
    assert "Harbour walk (video)" in report


def test_a_bought_pdf_is_delivered_marked_and_two_leaked_pages_name_its_buyer(
    site: Platform, tmp_path: Path
) -> None:
    master = pdf_documents.text_pdf(pages=6)
    work = _register(site, "Tide tables (book)", "tides.pdf", master, "application/pdf")
    buyer, result = _bought(site, tmp_path, work, "pdf")

    delivered = Path(result["path"]).read_bytes()
    with pikepdf.open(io.BytesIO(delivered)) as pdf:
        assert len(pdf.pages) == 6
    key, payload = _watermark_key(buyer, site, result["licence_id"])
    blind = extract_pdf_bytes(delivered, key)
    assert (blind.found, blind.payload) == (True, payload)
    _audited(site, result["licence_id"], delivered)

    # It leaks: pages 3 and 4 only, re-saved by qpdf with the metadata gone.
    with pikepdf.open(io.BytesIO(delivered)) as pdf:
        excerpt = pikepdf.new()
        excerpt.pages.extend(pdf.pages[2:4])
        out = io.BytesIO()
        excerpt.save(out)
    report = trace_in_portal(site, "rita", out.getvalue(), "pages.pdf")
    assert "Watermark read: licence named" in report
    assert result["licence_id"] in report
    assert "<td>bob</td>" in report
    assert "Tide tables (book)" in report
