"""Tracing a leaked copy to its licence and buyer, and what tracing must never reveal."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

import watermark
from exchange.catalogue.demo_images import demo_image_png
from exchange.metering.models import MeteredOrder
from exchange.purchases.services import purchase_create
from exchange.tracing.models import TraceOutcome, TraceReport
from exchange.tracing.selectors import licence_served_by
from exchange.tracing.services import trace_copy
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence

pytestmark = pytest.mark.django_db


def _delivered_copy(buyer, work, device_of) -> tuple[bytes, Any]:
    """Buy ``work`` and mark the master as the buyer's agent does on delivery."""
    keys, device = device_of(buyer)
    purchase = purchase_create(buyer=buyer, work_id=work.pk, device_id=device.device_id)
    ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
    licence = read_licence(purchase.licence.token, keyring=ring, now=int(time.time()))
    unwrapped = licence.unwrap_keys(keys)
    from django.conf import settings

    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    return watermark.embed_bytes(master, unwrapped.watermark_key,
                                 licence.watermark_payload), purchase.licence


def _leak(data: bytes, *, crop: float = 1.0, scale: float = 1.0, quality: int = 75) -> bytes:
    """What a leaker does: crop to the centre, resize, save as JPEG."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    cw, ch = int(w * crop), int(h * crop)
    left, top = (w - cw) // 2, (h - ch) // 2
    image = image.crop((left, top, left + cw, top + ch))
    if scale != 1.0:
        image = image.resize((int(cw * scale), int(ch * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def gallery(rita, bob, carol, make_work, fund, device_of) -> dict[str, Any]:
    """Three of Rita's pictures; Bob and Carol each bought the first and took a copy."""
    works = [make_work(rita, title=f"Picture {n}", data=demo_image_png(seed=n, width=640,
                                                                       height=480))
             for n in range(3)]
    fund(bob, 10_000)
    fund(carol, 10_000)
    bob_copy, bob_licence = _delivered_copy(bob, works[0], device_of)
    carol_copy, carol_licence = _delivered_copy(carol, works[0], device_of)
    return {"works": works, "bob": (bob_copy, bob_licence), "carol": (carol_copy, carol_licence)}


class TestNaming:
    def test_a_cropped_recompressed_copy_names_its_buyers_licence(self, rita, bob,
                                                                  gallery) -> None:
        copy, licence = gallery["bob"]
        report = trace_copy(owner=rita, data=_leak(copy, crop=0.9), name="found.jpg")
        assert report.outcome == TraceOutcome.MARKED
        assert report.work == gallery["works"][0]
        assert list(report.licences.all()) == [licence]
        assert report.licences.get().buyer == bob
        assert report.details["bit errors corrected"] >= 0

    def test_two_buyers_copies_name_two_licences(self, rita, gallery) -> None:
        for who in ("bob", "carol"):
            copy, licence = gallery[who]
            report = trace_copy(owner=rita, data=_leak(copy, scale=0.5, quality=85))
            assert list(report.licences.all()) == [licence], who

    def test_the_exact_master_is_recognised_but_names_nobody(self, rita, gallery,
                                                            settings) -> None:
        work = gallery["works"][1]
        master = (settings.MASTERS_DIR / work.master_path).read_bytes()
        report = trace_copy(owner=rita, data=master)
        assert report.outcome == TraceOutcome.MASTER
        assert report.work == work
        assert not report.licences.exists()

    def test_an_unmarked_altered_master_is_recognised_without_a_mark(self, rita, gallery,
                                                                     settings) -> None:
        work = gallery["works"][2]
        master = (settings.MASTERS_DIR / work.master_path).read_bytes()
        report = trace_copy(owner=rita, data=_leak(master, quality=90))
        assert report.outcome == TraceOutcome.NO_MARK
        assert report.work == work
        assert not report.licences.exists()

    def test_an_unrelated_picture_is_not_one_of_the_works(self, rita, gallery) -> None:
        report = trace_copy(owner=rita, data=_leak(demo_image_png(seed=99, width=640,
                                                                  height=480)))
        assert report.outcome == TraceOutcome.UNKNOWN
        assert report.work is None

    def test_a_delivered_copy_byte_for_byte_is_named_by_its_receipt(self, rita, bob,
                                                                     gallery) -> None:
        from exchange.metering.models import Receipt

        copy, licence = gallery["bob"]
        import hashlib

        Receipt.objects.create(licence=licence, receipt_id="r-1", token="t",
                               output_sha256=hashlib.sha256(copy).hexdigest(), marked=True,
                               claimed_bytes={}, settle_after=licence.issued_at)
        report = trace_copy(owner=rita, data=copy)
        assert report.outcome == TraceOutcome.DELIVERED_COPY
        assert list(report.licences.all()) == [licence]

    def test_unmarked_deliveries_of_the_master_name_nobody(self, rita, gallery,
                                                           settings) -> None:
        # Media the agent cannot mark are delivered as the master's own bytes, the same
        # for every buyer: a copy of them must not point at any one buyer.
        from exchange.metering.models import Receipt

        work = gallery["works"][0]
        master = (settings.MASTERS_DIR / work.master_path).read_bytes()
        for n, who in enumerate(("bob", "carol")):
            licence = gallery[who][1]
            Receipt.objects.create(licence=licence, receipt_id=f"r-{n}", token="t",
                                   output_sha256=work.sha256, marked=False,
                                   unmarked_reason="unsupported-media", claimed_bytes={},
                                   settle_after=licence.issued_at)
        report = trace_copy(owner=rita, data=master)
        assert report.outcome == TraceOutcome.MASTER
        assert not report.licences.exists()
        assert report.details["unmarked deliveries of these bytes"] == 2

    def test_packaging_an_image_keeps_its_fingerprint_for_tracing(self, gallery) -> None:
        from exchange.tracing.models import MasterFingerprint

        assert MasterFingerprint.objects.filter(work__in=gallery["works"]).count() == 3

    def test_each_trace_is_kept_and_audited(self, rita, gallery) -> None:
        from exchange.audit.models import AuditEvent

        report = trace_copy(owner=rita, data=_leak(gallery["bob"][0]), name="x.jpg")
        assert TraceReport.objects.get() == report
        assert report.suspect_size > 0
        assert len(report.suspect_sha256) == 64
        assert AuditEvent.objects.filter(action="trace.run", target_id=str(report.pk)).exists()


class TestBoundaries:
    def test_another_rights_holder_cannot_trace_someone_elses_work(self, rob, gallery) -> None:
        report = trace_copy(owner=rob, data=_leak(gallery["bob"][0]))
        assert report.outcome == TraceOutcome.UNKNOWN
        assert report.work is None
        assert not report.licences.exists()

    def test_a_buyer_cannot_trace(self, bob, gallery) -> None:
        from exchange.core.errors import ServiceError

        with pytest.raises(ServiceError, match="Only rights holders"):
            trace_copy(owner=bob, data=gallery["bob"][0])

    @pytest.mark.parametrize(("data", "code"), [
        (b"", "empty_file"),
        (demo_image_png(seed=1, width=300, height=300)[:400], "unreadable_image"),
    ])
    def test_bad_files_get_a_clear_error_and_leave_no_report(self, rita, gallery, data,
                                                             code) -> None:
        from exchange.core.errors import ServiceError

        with pytest.raises(ServiceError) as caught:
            trace_copy(owner=rita, data=data)
        assert caught.value.code == code
        assert not TraceReport.objects.exists()

    def test_a_file_over_the_limit_is_refused(self, rita, settings) -> None:
        from exchange.core.errors import ServiceError

        settings.MAX_TRACE_BYTES = 1000
        with pytest.raises(ServiceError) as caught:
            trace_copy(owner=rita, data=b"x" * 1001)
        assert caught.value.code == "too_large"

    def test_tracing_is_limited_per_hour(self, rita, settings) -> None:
        from exchange.core.errors import ServiceError

        settings.TRACES_PER_HOUR = 2
        for _ in range(2):
            trace_copy(owner=rita, data=b"not an image")
        with pytest.raises(ServiceError) as caught:
            trace_copy(owner=rita, data=b"not an image")
        assert caught.value.status_code == 429
        assert TraceReport.objects.count() == 2

    def test_a_file_that_is_no_image_is_simply_not_a_work(self, rita, gallery) -> None:
        report = trace_copy(owner=rita, data=b"GIF89a, a format not on sale here")
        assert report.outcome == TraceOutcome.UNKNOWN


class TestPortal:
    def test_upload_and_read_the_report(self, client, rita, bob, gallery) -> None:
        client.force_login(rita)
        page = client.get("/studio/trace/")
        assert page.status_code == 200
        upload = io.BytesIO(_leak(gallery["bob"][0], crop=0.9))
        upload.name = "found.jpg"
        response = client.post("/studio/trace/", {"file": upload})
        assert response.status_code == 302
        report = client.get(response["Location"])
        assert report.status_code == 200
        text = report.content.decode()
        assert bob.username in text
        assert str(gallery["bob"][1].pk) in text
        assert "found.jpg" in client.get("/studio/trace/").content.decode()

    def test_an_oversized_upload_is_refused_before_it_is_read(self, client, rita,
                                                              settings) -> None:
        settings.MAX_TRACE_BYTES = 1000
        client.force_login(rita)
        upload = io.BytesIO(b"x" * 200_000)
        upload.name = "huge.bin"
        response = client.post("/studio/trace/", {"file": upload})
        assert response.status_code == 413
        assert "larger than" in response.content.decode()
        assert not TraceReport.objects.exists()

    def test_a_bad_upload_shows_the_error_on_the_form(self, client, rita) -> None:
        client.force_login(rita)
        upload = io.BytesIO(demo_image_png(seed=1, width=300, height=300)[:400])
        upload.name = "broken.png"
        response = client.post("/studio/trace/", {"file": upload})
        assert response.status_code == 200
        assert "could not be read as an image" in response.content.decode()

    def test_reports_are_their_owners_alone(self, client, rita, rob, bob, gallery) -> None:
        report = trace_copy(owner=rita, data=_leak(gallery["bob"][0]))
        anonymous = client.get(f"/studio/trace/{report.pk}/")
        assert anonymous.status_code == 302
        assert "/login/" in anonymous["Location"]
        client.force_login(rob)
        assert client.get(f"/studio/trace/{report.pk}/").status_code == 404
        assert client.get("/studio/trace/not-a-number/").status_code == 404
        client.force_login(bob)
        assert client.get(f"/studio/trace/{report.pk}/").status_code == 403
        assert client.get("/studio/trace/").status_code == 403


class TestApi:
    def test_trace_list_and_read_through_the_api(self, api, rita, bob, gallery) -> None:
        client = api(rita)
        copy, licence = gallery["bob"]
        response = client.post("/api/v1/traces/", {"file": io.BytesIO(_leak(copy))},
                                format="multipart", HTTP_IDEMPOTENCY_KEY="trace-1")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["outcome"] == "marked"
        assert body["work"] == str(gallery["works"][0].pk)
        [named] = body["licences"]
        assert named["id"] == str(licence.pk)
        assert named["buyer"] == bob.username
        again = client.post("/api/v1/traces/", {"file": io.BytesIO(_leak(copy))},
                            format="multipart", HTTP_IDEMPOTENCY_KEY="trace-1")
        assert again.json() == body
        assert TraceReport.objects.count() == 1
        listed = client.get("/api/v1/traces/").json()
        assert [r["id"] for r in listed["results"]] == [body["id"]]
        assert client.get(f"/api/v1/traces/{body['id']}/").json() == body

    def test_a_named_licence_shows_who_served_its_copy(self, api, rita, bob, carol,
                                                       gallery) -> None:
        copy, licence = gallery["bob"]
        carol_device = gallery["carol"][1].device
        served = [(carol, carol_device, 300), (bob, licence.device, 100),
                  (carol, carol_device, 400)]
        for piece, (user, device, size) in enumerate(served):
            MeteredOrder.objects.create(
                licence=licence, nonce=f"n{piece}", serving_device=device, serving_user=user,
                piece=piece, bytes=size, counted_bytes=size, issued_at=timezone.now())
        report = trace_copy(owner=rita, data=_leak(copy))
        [named] = api(rita).get(f"/api/v1/traces/{report.pk}/").json()["licences"]
        assert named["served_by"] == [{"peer": carol.username, "bytes": 700},
                                      {"peer": bob.username, "bytes": 100}]
        assert licence_served_by(licence) == [
            {"serving_user__username": carol.username, "bytes": 700},
            {"serving_user__username": bob.username, "bytes": 100}]

    def test_the_api_keeps_reports_and_tracing_to_rights_holders(self, api, rita, rob, bob,
                                                                 gallery) -> None:
        report = trace_copy(owner=rita, data=_leak(gallery["bob"][0]))
        assert api(rob).get(f"/api/v1/traces/{report.pk}/").status_code == 404
        assert api(rob).get("/api/v1/traces/").json()["results"] == []
        assert api(None).get("/api/v1/traces/").status_code == 401
        refused = api(bob).post("/api/v1/traces/", {"file": io.BytesIO(b"x")},
                                format="multipart")
        assert refused.status_code == 403

    def test_bad_uploads_through_the_api(self, api, rita, settings) -> None:
        client = api(rita)
        missing = client.post("/api/v1/traces/", {}, format="multipart")
        assert missing.status_code == 400
        assert "file" in missing.json()["error"]["fields"]
        broken = client.post("/api/v1/traces/", {"file": io.BytesIO(
            demo_image_png(seed=1, width=300, height=300)[:400])}, format="multipart")
        assert broken.status_code == 400
        assert broken.json()["error"]["code"] == "unreadable_image"
        settings.MAX_TRACE_BYTES = 1000
        huge = client.post("/api/v1/traces/", {"file": io.BytesIO(b"x" * 200_000)},
                           format="multipart", HTTP_IDEMPOTENCY_KEY="huge-1")
        assert huge.status_code == 413
        assert not TraceReport.objects.exists()
