"""A song, end to end, with real processes on loopback: the demo's MP3 track is bought by
Bob's agent, delivered marked as an MP3 that plays, and a leaked excerpt of it (cut,
turned down, re-encoded) is traced in the portal by Rita to Bob's licence."""

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
import soundfile

from exchange.catalogue.demo_audio import mp3_bytes
from licensing.core import DeviceKeys, KeyRing, read_licence
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.selling import seed_all, trace_in_portal
from watermark.audio.codec import extract_audio_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRACK = "Harbour lights (demo track)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("audio")) as running:
        yield running


def _licence_of(buyer: AgentProcess, site: Platform, licence_id: str) -> Any:
    owned = json.loads((buyer.home / "licences" / f"{licence_id}.json").read_text())
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    return read_licence(owned["token"], keyring=ring, now=int(time.time()))


def test_a_bought_mp3_is_delivered_marked_and_a_leaked_excerpt_names_its_buyer(
    site: Platform, tmp_path: Path
) -> None:
    works = {w["title"]: w for w in httpx.get(f"{site.url}/api/v1/works/?page_size=100",
                                              timeout=10).json()["results"]}
    work = works[TRACK]
    assert work["media_type"] == "audio"
    seeder = AgentProcess(tmp_path, "a-seed", site.url)
    seeder.setup("rita", site.logins["rita"])
    seed_all(seeder, site, work["id"])
    buyer = AgentProcess(tmp_path, "a-bob", site.url)
    buyer.setup("bob", site.logins["bob"])  # the demo's top-up pays for it

    with seeder.serving():
        result = buyer.run("get", work["id"])

    # Delivered marked, as an MP3 that plays: the demo track's length, rate and channels.
    assert result["marked"] is True, result
    assert result["receipt"] == "sent"
    delivered = Path(result["path"]).read_bytes()
    info = soundfile.info(io.BytesIO(delivered))
    assert (info.format, info.samplerate, info.channels) == ("MP3", 44_100, 2)
    # 24 s, and each MP3 encoding (the master's, then the copy's) adds its encoder's
    # delay and last frame's padding, some 50 ms
    assert info.duration == pytest.approx(24.0, abs=0.2)
    samples, rate = soundfile.read(io.BytesIO(delivered), dtype="float32", always_2d=True)
    assert 0.3 < float(np.abs(samples).max()) <= 1.0  # music, not silence
    licence = _licence_of(buyer, site, result["licence_id"])
    keys = licence.unwrap_keys(DeviceKeys.load(buyer.home / "device.key"))
    blind = extract_audio_bytes(delivered, keys.watermark_key)
    assert (blind.found, blind.payload) == (True, licence.watermark_payload)

    # The platform holds a receipt that says marked, for exactly these bytes.
    receipts = site.query(
        "import json; from exchange.metering.models import Receipt; print(json.dumps(list("
        f"Receipt.objects.filter(licence_id='{result['licence_id']}')"
        ".values('marked', 'output_sha256'))))")
    assert receipts == [{"marked": True, "output_sha256": hashlib.sha256(delivered).hexdigest()}]
    # and its marking audit makes the very same MP3 from the master
    verdict = site.query(
        "import json; from exchange.metering.models import Receipt; "
        "from exchange.tracing.marking_checks import receipt_marking_check; "
        f"receipt = Receipt.objects.get(licence_id='{result['licence_id']}'); "
        "print(json.dumps(receipt_marking_check(receipt=receipt).verdict))")
    assert verdict == "matches"

    # It leaks: 20 s of it, 3 dB quieter, re-encoded at 128 kbit/s. Rita traces it.
    excerpt = samples[int(2.0 * rate): int(22.0 * rate)] * 10 ** (-3 / 20)
    leaked = mp3_bytes(excerpt, rate=rate, kbps=128)
    report = trace_in_portal(site, "rita", leaked, "leak.mp3")
    assert "Watermark read: licence named" in report
    assert result["licence_id"] in report
    assert "<td>bob</td>" in report
    assert TRACK in report
