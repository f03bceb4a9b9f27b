"""Sealed delivery on the platform: the work's mode, its packaging, the licence and its
personal table, the marking audit and tracing (docs/SEALED.md).

Rita sells sealed pictures; Bob and Carol buy them. What a buyer's device receives is
the shared sealed container (as pieces) and a table only its licence opens; the copy it
makes is the one the platform's audit recomputes, and tracing names its licence.
"""

from __future__ import annotations

import hashlib
import io
import time
import wave
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from PIL import Image

from exchange.audit.models import AuditEvent
from exchange.catalogue.demo_images import demo_image_png
from exchange.catalogue.models import DeliveryMode, Work, WorkStatus
from exchange.licensing.models import WorkPackage
from exchange.licensing.services import (
    device_revoke,
    licence_revoke,
    licence_table,
    package_get,
    package_keys,
)
from exchange.metering.models import Receipt
from exchange.purchases.services import purchase_create
from exchange.tracing.marking_checks import receipt_marking_check
from exchange.tracing.models import MarkingVerdict, TraceOutcome
from exchange.tracing.services import trace_copy
from licensing.core import KeyRing, read_licence
from licensing.core.packaging import decrypt_work
from licensing.core.sealed_tables import open_table
from tests.conftest import png_bytes
from tests.watermark.audio_clips import music
from tests.watermark.audio_files import encoded
from watermark.sealed import container_info, personal_table, unseal

pytestmark = pytest.mark.django_db


def _wav(seconds: float = 3.0, rate: int = 22_050, *, noise: bool = False,
         level: float = 8000) -> bytes:
    """A tone (``level`` 0: silence, too quiet for a sealed mark), or broadband noise."""
    if noise:
        samples = np.random.default_rng(3).normal(0, 3000, int(seconds * rate))
    else:
        samples = level * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def _upload(data: bytes, name: str, **fields: Any) -> dict[str, Any]:
    handle = io.BytesIO(data)
    handle.name = name
    return {"title": "Harbour", "price_minor": 1250, "currency": "EUR", "file": handle,
            **fields}


def _ring() -> KeyRing:
    return KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)


@pytest.fixture
def sealed_work(rita, make_work) -> Work:
    return make_work(rita, title="Sealed harbour", delivery_mode="sealed",
                     data=demo_image_png(seed=5, width=512, height=384))


@pytest.fixture
def sold(sealed_work, bob, fund, device_of) -> dict[str, Any]:
    """Bob bought the sealed work on his device."""
    fund(bob, 10_000)
    keys, device = device_of(bob)
    purchase = purchase_create(buyer=bob, work_id=sealed_work.pk, device_id=device.device_id)
    licence = read_licence(purchase.licence.token, keyring=_ring(), now=int(time.time()))
    return {"work": sealed_work, "row": purchase.licence, "licence": licence,
            "device_keys": keys, "purchase": purchase}


def _honest_copy(sold: dict[str, Any]) -> bytes:
    """What an honest agent writes: the table opened, the container unsealed with it."""
    package = package_get(sold["work"].pk)
    container = _container_from_pieces(package)
    licence = sold["licence"]
    keys = licence.unwrap_keys(sold["device_keys"])
    table = open_table(keys.watermark_key, licence.licence_id, licence_table(licence=sold["row"]),
                       licence.seal.table_sha256)
    return unseal(container, table)


def _container_from_pieces(package: WorkPackage) -> bytes:
    from licensing.core import Manifest

    manifest = Manifest.from_claims(dict(package.manifest))
    out = io.BytesIO()
    decrypt_work(package_keys(package).content_key, manifest,
                 settings.CIPHERTEXT_DIR / package.ciphertext_path, out)
    return out.getvalue()


# --- the delivery mode -----------------------------------------------------------------------



def _ogg(*, seed: int) -> bytes:
    """An Ogg Vorbis recording: a type sealed delivery refuses (its encoder strips the
    mark), so the rights holder must choose marked delivery."""
    return encoded("OGG", music(8.0, seed=seed))

class TestDeliveryMode:
    def test_a_new_image_work_is_sealed_by_default(self, rita, api,
                                                  django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = api(rita).post("/api/v1/works/", _upload(
                demo_image_png(seed=1, width=400, height=300), "a.png"), format="multipart")
        assert response.status_code == 201, response.json()
        assert response.json()["delivery_mode"] == "sealed"
        work = Work.objects.get(pk=response.json()["id"])
        assert work.status == WorkStatus.READY
        assert package_get(work.pk).sealed

    def test_a_rights_holder_may_choose_marked_for_an_image(self, rita, api) -> None:
        response = api(rita).post("/api/v1/works/", _upload(png_bytes(), "a.png",
                                                            delivery_mode="marked"),
                                  format="multipart")
        assert response.status_code == 201, response.json()
        assert response.json()["delivery_mode"] == "marked"

    def test_audio_is_marked_by_default(self, rita, api) -> None:
        response = api(rita).post("/api/v1/works/", _upload(_wav(), "a.wav"),
                                  format="multipart")
        assert response.status_code == 201, response.json()
        assert response.json()["delivery_mode"] == "marked"

    def test_a_wav_recording_may_be_sealed(self, rita, api,
                                           django_capture_on_commit_callbacks) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = api(rita).post("/api/v1/works/", _upload(
                _wav(6.0, noise=True), "a.wav", delivery_mode="sealed"), format="multipart")
        assert response.status_code == 201, response.json()
        assert response.json()["delivery_mode"] == "sealed"
        assert package_get(response.json()["id"]).sealed

    def test_sealed_ogg_is_refused_with_a_clear_error(self, rita, api) -> None:
        response = api(rita).post("/api/v1/works/", _upload(_ogg(seed=1), "a.ogg",
                                                            delivery_mode="sealed"),
                                  format="multipart")
        assert response.status_code == 400
        error = response.json()["error"]
        assert "delivery_mode" in error["fields"]
        assert "Sealed delivery is for PNG, JPEG and WebP images and WAV" in error["message"]
        assert not Work.objects.exists()

    def test_an_unknown_mode_is_refused(self, rita, api) -> None:
        response = api(rita).post("/api/v1/works/", _upload(png_bytes(), "a.png",
                                                            delivery_mode="secret"),
                                  format="multipart")
        assert response.status_code == 400
        assert "delivery_mode" in response.json()["error"]["fields"]

    def test_the_mode_may_change_until_the_work_is_packaged(self, rita, api,
                                                           make_work) -> None:
        draft = make_work(rita, ready=False, delivery_mode="marked")
        response = api(rita).patch(f"/api/v1/works/{draft.pk}/", {"delivery_mode": "sealed"},
                                   format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["delivery_mode"] == "sealed"

    def test_the_mode_is_fixed_once_packaged(self, rita, api, sealed_work) -> None:
        response = api(rita).patch(f"/api/v1/works/{sealed_work.pk}/",
                                   {"delivery_mode": "marked"}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "delivery_mode_fixed"
        sealed_work.refresh_from_db()
        assert sealed_work.delivery_mode == DeliveryMode.SEALED
        # The same mode again is no change at all.
        response = api(rita).patch(f"/api/v1/works/{sealed_work.pk}/",
                                   {"delivery_mode": "sealed", "title": "Renamed"},
                                   format="json")
        assert response.status_code == 200, response.json()

    def test_sealed_ogg_is_refused_on_update_too(self, rita, api, make_work) -> None:
        draft = make_work(rita, ready=False, data=_ogg(seed=2))
        response = api(rita).patch(f"/api/v1/works/{draft.pk}/", {"delivery_mode": "sealed"},
                                   format="json")
        assert response.status_code == 400
        assert "delivery_mode" in response.json()["error"]["fields"]

    def test_buyers_see_the_mode_of_a_work(self, bob, api, sealed_work) -> None:
        body = api(bob).get(f"/api/v1/works/{sealed_work.pk}/").json()
        assert body["delivery_mode"] == "sealed"

    def test_the_schema_documents_the_field(self, api, rita) -> None:
        schema = api(rita).get("/api/v1/schema/?format=json").json()
        components = schema["components"]["schemas"]
        create = components["WorkCreateInRequest"]["properties"]["delivery_mode"]
        assert create["allOf"] == [{"$ref": "#/components/schemas/DeliveryModeEnum"}]
        assert set(components["DeliveryModeEnum"]["enum"]) == {"marked", "sealed"}
        assert "delivery_mode" in components["WorkOut"]["properties"]
        assert "/api/v1/licences/{licence_id}/table/" in schema["paths"]

    def test_the_portal_registers_with_a_chosen_mode(self, client, rita) -> None:
        client.force_login(rita)
        page = client.get("/studio/works/new/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert 'name="delivery_mode"' in page
        upload = io.BytesIO(_ogg(seed=3))
        upload.name = "a.ogg"
        response = client.post("/studio/works/new/", {
            "title": "Song", "file": upload, "price": "5", "currency": "EUR",
            "allowed_uses": ["view", "download"], "licence_days": 365,
            "byte_allowance_multiple": 2, "delivery_mode": "sealed"})
        assert response.status_code == 400
        assert "Sealed delivery is for PNG, JPEG and WebP images and WAV" in \
            response.content.decode()

    def test_the_portal_edit_form_refuses_a_mode_change_once_packaged(self, client, rita,
                                                                       sealed_work) -> None:
        client.force_login(rita)
        page = client.get(f"/studio/works/{sealed_work.pk}/edit/").content.decode()
        assert 'name="delivery_mode"' in page
        response = client.post(f"/studio/works/{sealed_work.pk}/edit/", {
            "title": sealed_work.title, "description": "", "price": "12.50",
            "currency": "EUR", "allowed_uses": ["view", "download"], "licence_days": 365,
            "byte_allowance_multiple": 2, "delivery_mode": "marked"})
        assert response.status_code == 409
        assert "The delivery mode is fixed once the work is packaged" in \
            response.content.decode()
        sealed_work.refresh_from_db()
        assert sealed_work.delivery_mode == DeliveryMode.SEALED

    def test_the_portal_speaks_korean_about_the_mode(self, client, rita, sealed_work) -> None:
        client.force_login(rita)
        page = client.get(f"/works/{sealed_work.pk}/", HTTP_ACCEPT_LANGUAGE="ko"
                          ).content.decode()
        assert "Sealed (decrypts only into a marked copy)" not in page
        assert 'class="delivery sealed"' in page

    def test_my_works_lists_each_works_mode(self, client, rita, sealed_work) -> None:
        client.force_login(rita)
        page = client.get("/studio/works/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert 'class="delivery sealed">Sealed (decrypts only into a marked copy)' in page


# --- packaging -------------------------------------------------------------------------------


class TestPackaging:
    def test_a_sealed_work_encrypts_its_container_not_its_master(self, sealed_work) -> None:
        package = package_get(sealed_work.pk)
        master = (settings.MASTERS_DIR / sealed_work.master_path).read_bytes()
        container = _container_from_pieces(package)
        assert container != master
        assert container == (settings.MASTERS_DIR / package.container_path).read_bytes()
        assert package.manifest["size"] == len(container)
        assert package.table_size == container_info(container).table_size
        # The work's own hash stays the master's, which tracing matches exactly.
        assert sealed_work.sha256 == package.master_sha256 == hashlib.sha256(master).hexdigest()
        assert oct((settings.MASTERS_DIR / package.container_path).stat().st_mode & 0o777) \
            == "0o600"

    def test_a_marked_work_has_no_container(self, rita, make_work) -> None:
        package = package_get(make_work(rita).pk)
        assert not package.sealed
        assert package.container_path == ""

    @pytest.mark.parametrize("master", [
        pytest.param(png_bytes(24, 24), id="a tiny picture"),
        pytest.param(_wav(6.0, level=0), id="silence"),
        pytest.param(_wav(3.0, noise=True), id="a 3 s recording"),
    ])
    def test_a_master_the_sealed_library_refuses_falls_back_to_marked(self, rita, make_work,
                                                                      master) -> None:
        work = make_work(rita, data=master, delivery_mode="sealed")
        assert work.status == WorkStatus.READY
        assert work.delivery_mode == DeliveryMode.MARKED
        assert not package_get(work.pk).sealed
        assert AuditEvent.objects.filter(action="work.delivery_mode_fallback").exists()


# --- the licence and its table ---------------------------------------------------------------


class TestLicence:
    def test_a_sealed_licence_names_its_table(self, sold) -> None:
        assert sold["licence"].seal is not None
        assert sold["licence"].seal.size > 16

    def test_the_device_never_receives_the_works_watermark_key(self, sold) -> None:
        keys = sold["licence"].unwrap_keys(sold["device_keys"])
        work_key = package_keys(package_get(sold["work"].pk)).watermark_key
        assert keys.watermark_key != work_key
        assert work_key not in keys.watermark_key + keys.content_key

    def test_a_marked_licence_has_no_seal(self, rita, bob, make_work, fund, device_of) -> None:
        work = make_work(rita)
        fund(bob, 5000)
        _keys, device = device_of(bob)
        purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
        licence = read_licence(purchase.licence.token, keyring=_ring(), now=int(time.time()))
        assert licence.seal is None

    def test_a_sealed_sale_is_billed_like_a_marked_one(self, sold) -> None:
        assert sold["purchase"].price_minor == sold["work"].price_minor

    def test_the_buyer_fetches_a_table_matching_the_licence(self, api, bob, sold) -> None:
        url = f"/api/v1/licences/{sold['row'].pk}/table/"
        first = api(bob).get(url)
        assert first.status_code == 200
        assert first["Content-Type"] == "application/octet-stream"
        assert "no-store" in first["Cache-Control"]
        blob = first.content
        assert hashlib.sha256(blob).digest() == sold["licence"].seal.table_sha256
        assert len(blob) == sold["licence"].seal.size
        assert api(bob).get(url).content == blob  # deterministic
        keys = sold["licence"].unwrap_keys(sold["device_keys"])
        table = open_table(keys.watermark_key, sold["licence"].licence_id, blob,
                           sold["licence"].seal.table_sha256)
        work_key = package_keys(package_get(sold["work"].pk)).watermark_key
        assert table == personal_table(work_key, sold["licence"].watermark_payload,
                                       package_get(sold["work"].pk).table_size)

    def test_another_user_gets_404(self, api, carol, rita, sold) -> None:
        for who in (carol, rita):
            response = api(who).get(f"/api/v1/licences/{sold['row'].pk}/table/")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"

    def test_anonymous_callers_are_refused(self, api, sold) -> None:
        assert api(None).get(f"/api/v1/licences/{sold['row'].pk}/table/").status_code == 401

    def test_a_revoked_licence_gets_no_table(self, api, bob, sold) -> None:
        licence_revoke(licence=sold["row"], reason="chargeback")
        response = api(bob).get(f"/api/v1/licences/{sold['row'].pk}/table/")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "licence_revoked"

    def test_a_revoked_device_gets_no_table(self, api, bob, sold) -> None:
        """A stolen device's files hold its keys and the account's token: once the owner
        revokes the device, its tables are refused too."""
        device_revoke(device=sold["row"].device, actor=bob)
        response = api(bob).get(f"/api/v1/licences/{sold['row'].pk}/table/")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "device_revoked"

    @pytest.mark.parametrize("licence_id", ["not-a-uuid", "1", "%20", "x" * 300])
    def test_an_id_that_is_not_a_uuid_is_404(self, api, bob, licence_id) -> None:
        response = api(bob).get(f"/api/v1/licences/{licence_id}/table/")
        assert response.status_code == 404

    def test_a_marked_licence_has_no_table(self, api, rita, bob, make_work, fund,
                                           device_of) -> None:
        work = make_work(rita)
        fund(bob, 5000)
        _keys, device = device_of(bob)
        purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
        response = api(bob).get(f"/api/v1/licences/{purchase.licence.pk}/table/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_sealed"


# --- the marking audit ----------------------------------------------------------------------


def _receipt(licence: Any, output: bytes, *, marked: bool = True) -> Receipt:
    return Receipt.objects.create(
        licence=licence, receipt_id=f"r-{licence.pk.hex[:24]}", token="signed", marked=marked,
        output_sha256=hashlib.sha256(output).hexdigest(), unmarked_reason="",
        claimed_bytes={}, settle_after=licence.issued_at, settled_at=licence.issued_at)


class TestMarkingAudit:
    def test_an_honest_sealed_copy_matches(self, sold) -> None:
        copy = _honest_copy(sold)
        check = receipt_marking_check(receipt=_receipt(sold["row"], copy))
        assert check.verdict == MarkingVerdict.MATCHES
        assert check.expected_sha256 == hashlib.sha256(copy).hexdigest()

    def test_a_copy_with_another_hash_is_flagged(self, sold) -> None:
        master = (settings.MASTERS_DIR / sold["work"].master_path).read_bytes()
        receipt = _receipt(sold["row"], master)
        assert receipt_marking_check(receipt=receipt).verdict == MarkingVerdict.DIFFERS
        receipt.refresh_from_db()
        assert receipt.needs_review

    def test_a_sealed_copy_reported_unmarked_is_flagged(self, sold) -> None:
        receipt = _receipt(sold["row"], b"anything", marked=False)
        assert receipt_marking_check(receipt=receipt).verdict == MarkingVerdict.SKIPPED_MARK


# --- tracing -------------------------------------------------------------------------------


def _recompressed(data: bytes, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


class TestTracing:
    def test_a_leaked_sealed_copy_names_its_buyer(self, rita, bob, sold) -> None:
        leaked = _recompressed(_honest_copy(sold))
        report = trace_copy(owner=rita, data=leaked, name="leak.jpg")
        assert report.outcome == TraceOutcome.MARKED
        assert report.work == sold["work"]
        assert [licence.buyer for licence in report.licences.all()] == [bob]
        accusation = report.details["accusation"]
        assert accusation["licences_tested"] == 1
        assert accusation["candidates"][0]["accused"] is True
        assert accusation["candidates"][0]["buyer"] == "bob"
        assert accusation["candidates"][0]["score"] > accusation["threshold"]
        assert accusation["candidates"][0]["false_accusation_bound"] <= accusation["epsilon"]

    def test_an_unmarked_copy_names_nobody(self, rita, sold) -> None:
        master = (settings.MASTERS_DIR / sold["work"].master_path).read_bytes()
        report = trace_copy(owner=rita, data=_recompressed(master), name="clean.jpg")
        assert report.outcome == TraceOutcome.NO_MARK
        assert report.work == sold["work"]
        assert not report.licences.exists()
        assert report.details["reason"] == "no licence named"
        assert report.details["best score"] < report.details["accusation threshold (score)"]

    def test_the_api_reports_the_candidates_with_their_bounds(self, api, rita, bob,
                                                              sold) -> None:
        leaked = io.BytesIO(_recompressed(_honest_copy(sold)))
        leaked.name = "leak.jpg"
        body = api(rita).post("/api/v1/traces/", {"file": leaked}, format="multipart").json()
        assert body["outcome"] == "marked"
        assert [item["buyer"] for item in body["licences"]] == ["bob"]
        best = body["details"]["accusation"]["candidates"][0]
        assert {"licence", "buyer", "score", "false_accusation_bound", "accused"} <= set(best)

    @pytest.mark.parametrize(("language", "expected"), [
        ("en", "Licences tested (sealed delivery)"),
        ("ko", 'lang="ko"'),
    ])
    def test_the_portal_report_shows_the_accusation(self, client, rita, sold, language,
                                                    expected) -> None:
        client.force_login(rita)
        report = trace_copy(owner=rita, data=_recompressed(_honest_copy(sold)), name="x.jpg")
        page = client.get(f"/studio/trace/{report.pk}/",
                          HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert expected in page
        assert "<td>bob</td>" in page
        if language == "ko":
            assert "Licences tested (sealed delivery)" not in page

    def test_the_portal_says_no_licence_named(self, client, rita, sold) -> None:
        client.force_login(rita)
        master = (settings.MASTERS_DIR / sold["work"].master_path).read_bytes()
        report = trace_copy(owner=rita, data=_recompressed(master), name="clean.jpg")
        page = client.get(f"/studio/trace/{report.pk}/", HTTP_ACCEPT_LANGUAGE="en"
                          ).content.decode()
        assert "No licence named" in page


class TestSealedRecording:
    def test_a_sealed_recordings_copy_names_its_buyer(self, rita, bob, make_work, fund,
                                                      device_of) -> None:
        work = make_work(rita, title="Surf", data=_wav(8.0, noise=True),
                         delivery_mode="sealed")
        assert package_get(work.pk).sealed
        fund(bob, 10_000)
        keys, device = device_of(bob)
        purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
        licence = read_licence(purchase.licence.token, keyring=_ring(), now=int(time.time()))
        copy = _honest_copy({"work": work, "row": purchase.licence, "licence": licence,
                             "device_keys": keys})
        assert copy[:4] == b"RIFF"
        report = trace_copy(owner=rita, data=copy, name="surf.wav")
        # The exact bytes are not in any receipt yet, so the copy is tested, not matched.
        assert report.outcome == TraceOutcome.MARKED, report.details
        assert [lic.buyer for lic in report.licences.all()] == [bob]
        assert report.details["accusation"]["candidates"][0]["accused"] is True
