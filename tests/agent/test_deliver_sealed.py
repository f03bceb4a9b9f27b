"""Delivering a sealed work: the pieces are the sealed container, the licence's personal
table (fetched from the platform, checked, opened with the table key) turns it into the
marked copy, and there is no way out but that one: a bad table writes nothing."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from PIL import Image

from agent.context import AgentError
from agent.deliver import Delivery, DeliveryError, deliver, receipt_for, streamed_copy
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError
from agent.store import PieceStore, WorkStore
from agent.workflow import sealed_table
from licensing.core import (
    Licence,
    LicenceKeys,
    Manifest,
    SealClaim,
    issue_licence,
    package_work,
    read_licence,
    read_receipt,
    sign_manifest,
)
from licensing.core.sealed_tables import seal_table, table_key_for, table_sha256
from tests.agent.support import photo_png
from tests.licensing.core_support import DAY, NOW, Sale
from watermark.sealed import container_info, personal_table, seal_image, unseal

PAYLOAD = 0x0123_4567_89AB_CDEF
LICENCE_ID = "licence-bob-sealed"


@dataclass
class SealedBuy:
    """A sealed work as Bob's agent holds it after a download, and its encrypted table."""

    work: WorkStore
    manifest: Manifest
    licence: Licence
    keys: LicenceKeys
    master: bytes
    container: bytes
    table: bytes
    #: what only the platform knows: the work's watermark key
    watermark_key: bytes


def bought_sealed(sale: Sale, folder: Path, master: bytes, *,
                  licence_id: str = LICENCE_ID) -> SealedBuy:
    """The platform's side (seal, package, table, licence) and Bob's store holding it all."""
    folder.mkdir(parents=True, exist_ok=True)
    watermark_key = os.urandom(32)
    container = seal_image(master, watermark_key)
    (folder / "container").write_bytes(container)
    packaged = package_work(folder / "container", folder / "ciphertext",
                            work_id="work-sealed-1", piece_size=1 << 16)
    token = sign_manifest(packaged.manifest, keyring=sale.ring, issued_at=NOW - DAY,
                          expires_at=NOW + DAY)
    table_key = table_key_for(watermark_key, licence_id)
    table = personal_table(watermark_key, PAYLOAD, container_info(container).table_size)
    blob = seal_table(table_key, licence_id, table)
    licence_token = issue_licence(
        keyring=sale.ring, licence_id=licence_id, buyer="bob", device=sale.bob.public,
        manifest=packaged.manifest, watermark_payload=PAYLOAD, uses=["view", "download"],
        issued_at=NOW - 60, expires_at=NOW + DAY,
        byte_allowance=2 * packaged.manifest.ciphertext_size,
        keys=LicenceKeys(content_key=packaged.content_key, watermark_key=table_key),
        seal=SealClaim(table_sha256=table_sha256(blob), size=len(blob)),
    )
    licence = read_licence(licence_token, keyring=sale.agent_ring, now=NOW,
                           device_id=sale.bob.device_id)
    work = PieceStore(folder / "store").add_work(token, keyring=sale.agent_ring, now=NOW)
    assert work.import_ciphertext(packaged.ciphertext_path).bad == ()
    return SealedBuy(work, packaged.manifest, licence, licence.unwrap_keys(sale.bob), master,
                     container, blob, watermark_key)


@pytest.fixture
def held(sale: Sale, tmp_path: Path) -> SealedBuy:
    return bought_sealed(sale, tmp_path / "work", photo_png())


def deliver_to(held: SealedBuy, destination: Path, table: bytes | None) -> Delivery:
    return deliver(store=held.work, manifest=held.manifest, licence=held.licence,
                   keys=held.keys, destination=destination, content_type="image/png",
                   table=table)


def _psnr(a: bytes, b: bytes) -> float:
    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), np.float64)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), np.float64)
    return float(10 * np.log10(255**2 / np.mean((x - y) ** 2)))


def test_a_sealed_work_is_delivered_as_the_unsealed_marked_copy(held: SealedBuy,
                                                                tmp_path: Path) -> None:
    destination = tmp_path / "library" / "harbour.png"
    delivery = deliver_to(held, destination, held.table)

    output = destination.read_bytes()
    table = personal_table(held.watermark_key, PAYLOAD, container_info(held.container).table_size)
    assert output == unseal(held.container, table)
    assert delivery.marked
    assert delivery.unmarked_reason is None
    assert delivery.sha256 == hashlib.sha256(output).digest()
    assert output != held.master
    assert output[:8] == b"\x89PNG\r\n\x1a\n"
    assert _psnr(output, held.master) >= 38
    # Nothing else in the folder: no container, no temporary file.
    assert sorted(p.name for p in destination.parent.iterdir()) == ["harbour.png"]


def test_the_receipt_says_marked_with_the_unsealed_copys_hash(sale: Sale, held: SealedBuy,
                                                              tmp_path: Path) -> None:
    delivery = deliver_to(held, tmp_path / "out.png", held.table)
    token = receipt_for(delivery, device=sale.bob, licence=held.licence, served_bytes={},
                        now=NOW)
    receipt = read_receipt(token, licence=held.licence, now=NOW)
    assert receipt.marked
    assert receipt.output_sha256 == hashlib.sha256((tmp_path / "out.png").read_bytes()).digest()


def test_a_sealed_work_is_never_streamed_as_plaintext(held: SealedBuy, tmp_path: Path) -> None:
    assert streamed_copy(store=held.work, manifest=held.manifest, licence=held.licence,
                         keys=held.keys, destination=tmp_path / "x.png",
                         content_type="application/octet-stream") is None


def _refused(held: SealedBuy, tmp_path: Path, table: bytes | None, match: str) -> None:
    destination = tmp_path / "library" / "harbour.png"
    destination.parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(DeliveryError, match=match):
        deliver_to(held, destination, table)
    assert list(destination.parent.iterdir()) == []


def test_without_its_table_nothing_is_written(held: SealedBuy, tmp_path: Path) -> None:
    _refused(held, tmp_path, None, "personal table is needed")


def test_a_tampered_table_is_refused_and_nothing_is_written(held: SealedBuy,
                                                           tmp_path: Path) -> None:
    tampered = bytearray(held.table)
    tampered[-1] ^= 1
    _refused(held, tmp_path, bytes(tampered), "SHA-256")


@pytest.mark.parametrize("size", [0, 17, -1])
def test_a_table_of_another_size_is_refused(held: SealedBuy, tmp_path: Path, size: int) -> None:
    table = held.table + b"\0" if size == -1 else held.table[:size]
    _refused(held, tmp_path, table, "not the")


def test_another_licences_table_is_refused(sale: Sale, held: SealedBuy, tmp_path: Path) -> None:
    other_key = table_key_for(held.watermark_key, "licence-carol")
    theirs = seal_table(other_key, "licence-carol", personal_table(
        held.watermark_key, 7, container_info(held.container).table_size))
    _refused(held, tmp_path, theirs, "refused")


def test_a_table_that_decrypts_but_does_not_fit_the_container_writes_nothing(
        sale: Sale, tmp_path: Path) -> None:
    """A platform bug or a forged licence: a validly bound table of the wrong shape."""
    held = bought_sealed(sale, tmp_path / "work", photo_png())
    wrong = os.urandom(64)
    blob = seal_table(held.keys.watermark_key, LICENCE_ID, wrong)
    forged = bought_sealed(sale, tmp_path / "work2", photo_png())
    object.__setattr__(forged.licence, "seal", SealClaim(table_sha256=table_sha256(blob),
                                                         size=len(blob)))
    forged_keys = LicenceKeys(content_key=forged.keys.content_key,
                              watermark_key=held.keys.watermark_key)
    destination = tmp_path / "library" / "x.png"
    destination.parent.mkdir(parents=True)
    with pytest.raises(DeliveryError, match="does not open with this licence's table"):
        deliver(store=forged.work, manifest=forged.manifest, licence=forged.licence,
                keys=forged_keys, destination=destination, content_type="image/png",
                table=blob)
    assert list(destination.parent.iterdir()) == []


# --- fetching the table from the platform ----------------------------------------------------


def _client(handler: httpx.MockTransport) -> PlatformClient:
    return PlatformClient("http://platform.test", "token", transport=handler)


def test_the_agent_fetches_the_table_from_its_licence_url() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, content=b"t" * 100)

    with _client(httpx.MockTransport(answer)) as client:
        assert client.licence_table("lic-1", max_bytes=100) == b"t" * 100
    assert seen == ["/api/v1/licences/lic-1/table/"]


def test_an_oversized_table_from_the_platform_is_refused() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"t" * 101)

    with _client(httpx.MockTransport(answer)) as client, \
            pytest.raises(PlatformError, match="larger than"):
        client.licence_table("lic-1", max_bytes=100)


def test_a_refused_table_request_carries_the_platforms_error() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"code": "licence_revoked",
                                                   "message": "This licence is revoked.",
                                                   "fields": {}}})

    with _client(httpx.MockTransport(answer)) as client, \
            pytest.raises(PlatformError) as caught:
        client.licence_table("lic-1", max_bytes=100)
    assert caught.value.code == "licence_revoked"


class _Platform:
    """The platform as `sealed_table` sees it: serves the table once, then is offline."""

    def __init__(self, blob: bytes) -> None:
        self.blob: bytes | None = blob
        self.calls = 0

    def licence_table(self, licence_id: str, *, max_bytes: int) -> bytes:
        self.calls += 1
        if self.blob is None:
            raise PlatformUnreachableError("offline")
        return self.blob


def test_the_table_is_kept_so_a_sealed_work_is_delivered_again_offline(
        held: SealedBuy, tmp_path: Path) -> None:
    platform = _Platform(held.table)
    home = SimpleNamespace(licences_dir=tmp_path / "licences")
    agent = SimpleNamespace(home=home, platform=platform)
    assert sealed_table(agent, held.licence) == held.table  # type: ignore[arg-type]
    platform.blob = None
    assert sealed_table(agent, held.licence) == held.table  # type: ignore[arg-type]
    assert platform.calls == 1
    # a damaged copy on disk is not used: the platform is asked again (and is offline)
    (home.licences_dir / f"{held.licence.licence_id}.table").write_bytes(b"x" * len(held.table))
    with pytest.raises(AgentError, match="unreachable"):
        sealed_table(agent, held.licence)  # type: ignore[arg-type]
