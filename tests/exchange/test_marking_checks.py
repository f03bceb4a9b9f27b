"""The platform's sampled recomputation of delivered copies, against their receipts."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import watermark
from exchange.audit.models import AuditEvent
from exchange.catalogue.demo_images import demo_image_png
from exchange.catalogue.models import Work
from exchange.licensing.services import package_get, package_keys
from exchange.metering.models import Receipt
from exchange.purchases.services import purchase_create
from exchange.tracing.marking_checks import receipt_marking_check, receipts_marking_check_sample
from exchange.tracing.models import MarkingCheck, MarkingVerdict

pytestmark = pytest.mark.django_db


@pytest.fixture
def bought(rita, bob, make_work, fund, device_of, settings) -> dict[str, Any]:
    work = make_work(rita, data=demo_image_png(seed=4, width=400, height=300))
    fund(bob, 5000)
    _keys, device = device_of(bob)
    licence = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id).licence
    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    key = package_keys(package_get(work.pk)).watermark_key
    return {"work": work, "licence": licence, "master": master,
            "honest": watermark.embed_bytes(master, key, licence.watermark_payload)}


def _receipt(licence: Any, output: bytes, *, marked: bool, reason: str = "",
             settled: bool = True) -> Receipt:
    return Receipt.objects.create(
        licence=licence, receipt_id=f"r-{licence.pk.hex[:24]}", token="signed", marked=marked,
        output_sha256=hashlib.sha256(output).hexdigest(), unmarked_reason=reason,
        claimed_bytes={}, settle_after=licence.issued_at,
        settled_at=licence.issued_at if settled else None)


def test_an_honest_agents_copy_matches(bought) -> None:
    receipt = _receipt(bought["licence"], bought["honest"], marked=True)
    check = receipt_marking_check(receipt=receipt)
    assert check.verdict == MarkingVerdict.MATCHES
    receipt.refresh_from_db()
    assert not receipt.needs_review


def test_an_unmarked_copy_reported_as_marked_is_flagged(bought) -> None:
    receipt = _receipt(bought["licence"], bought["master"], marked=True)
    check = receipt_marking_check(receipt=receipt)
    assert check.verdict == MarkingVerdict.DIFFERS
    receipt.refresh_from_db()
    assert receipt.needs_review
    assert "marking check" in receipt.review_reason
    assert AuditEvent.objects.filter(action="receipt.marking_flagged").count() == 1


def test_skipping_the_mark_on_a_markable_image_is_flagged(bought) -> None:
    receipt = _receipt(bought["licence"], bought["master"], marked=False,
                       reason="embed-failed")
    check = receipt_marking_check(receipt=receipt)
    assert check.verdict == MarkingVerdict.SKIPPED_MARK
    receipt.refresh_from_db()
    assert receipt.needs_review


def test_an_unmarkable_work_delivered_as_its_master_matches(rita, bob, make_work, fund,
                                                            device_of, settings) -> None:
    # A format the library does not mark: no upload sniffs as one today (every type the
    # catalogue takes is marked), so the work's type is set as an older release stored it.
    work = make_work(rita)
    Work.objects.filter(pk=work.pk).update(content_type="application/octet-stream",
                                           media_type="document")
    fund(bob, 5000)
    _keys, device = device_of(bob)
    licence = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id).licence
    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    receipt = _receipt(licence, master, marked=False, reason="unsupported-format")
    assert receipt_marking_check(receipt=receipt).verdict == MarkingVerdict.MATCHES


def test_a_master_the_mark_does_not_survive_in_delivered_plain_matches(
        rita, bob, make_work, fund, device_of, settings) -> None:
    # Pure black and white squares: embed's own check refuses every marked copy, so the
    # honest agent writes the master, reported as embed-failed; the platform agrees.
    y, x = np.mgrid[0:320, 0:384]
    board = Image.fromarray(((x // 16 + y // 16) % 2 * 255).astype(np.uint8), mode="L")
    out = io.BytesIO()
    board.save(out, "PNG")
    work = make_work(rita, data=out.getvalue())
    fund(bob, 5000)
    _keys, device = device_of(bob)
    licence = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id).licence
    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    receipt = _receipt(licence, master, marked=False, reason="embed-failed")
    assert receipt_marking_check(receipt=receipt).verdict == MarkingVerdict.MATCHES


def test_each_receipt_is_checked_once_and_the_sample_skips_checked_ones(bought) -> None:
    receipt = _receipt(bought["licence"], bought["master"], marked=True)
    first = receipt_marking_check(receipt=receipt)
    assert receipt_marking_check(receipt=receipt) == first
    assert receipts_marking_check_sample(limit=5) == 0
    assert MarkingCheck.objects.count() == 1
    assert AuditEvent.objects.filter(action="receipt.marking_flagged").count() == 1


def test_the_periodic_sample_checks_settled_receipts_only(bought) -> None:
    receipt = _receipt(bought["licence"], bought["honest"], marked=True, settled=False)
    # Settlement sets the review flag from the orders: a check before it would be lost.
    assert receipts_marking_check_sample(limit=5) == 0
    Receipt.objects.filter(pk=receipt.pk).update(settled_at=receipt.settle_after)
    assert receipts_marking_check_sample(limit=5) == 1
    assert MarkingCheck.objects.get().verdict == MarkingVerdict.MATCHES


def test_a_flag_is_added_to_the_settlements_own_reason(bought) -> None:
    receipt = _receipt(bought["licence"], bought["master"], marked=True)
    Receipt.objects.filter(pk=receipt.pk).update(needs_review=True,
                                                 review_reason="orders disagree")
    receipt_marking_check(receipt=receipt)  # the in-memory copy has no reason: not used
    receipt.refresh_from_db()
    assert receipt.review_reason.startswith("orders disagree; marking check:")


def test_the_command_and_the_beat_job(bought, capsys) -> None:
    from django.core.management import call_command

    from exchange.celery import app
    from exchange.operations.periodic import jobs

    _receipt(bought["licence"], bought["honest"], marked=True)
    call_command("check_receipt_marking", "--limit", "3")
    assert "checked 1 receipt(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        call_command("check_receipt_marking", "--limit", "-1")
    job = next(j for j in jobs() if j.name == "check-receipt-marking")
    assert job.task in app.tasks
