"""Tracing videos and documents: a leaked copy names its licence, only for the work's
owner, and a damaged suspect is a clear error that leaves no report."""

from __future__ import annotations

import io
import time
from typing import Any

import pikepdf
import pytest
from django.conf import settings
from django.test import Client

from exchange.core.errors import ServiceError
from exchange.purchases.services import purchase_create
from exchange.tracing.models import TraceOutcome, TraceReport
from exchange.tracing.services import trace_copy
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence
from tests.watermark import epub_books, pdf_documents, video_attacks, video_clips
from watermark import rule

pytestmark = pytest.mark.django_db


def _sold_copy(buyer, work, device_of) -> tuple[bytes, Any]:
    """Buy ``work`` and make the copy the buyer's agent delivers, by the marking rule."""
    keys, device = device_of(buyer)
    purchase = purchase_create(buyer=buyer, work_id=work.pk, device_id=device.device_id)
    ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
    licence = read_licence(purchase.licence.token, keyring=ring, now=int(time.time()))
    unwrapped = licence.unwrap_keys(keys)
    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    copy = rule.licensed_copy(master, work.content_type, unwrapped.watermark_key,
                              licence.watermark_payload)
    assert copy.marked, copy.detail
    return copy.data, purchase.licence


@pytest.fixture
def shelf(rita, bob, make_work, fund, device_of) -> dict[str, Any]:
    """Rita sells a video, a PDF and an EPUB; Bob buys each."""
    fund(bob, 50_000)
    video = make_work(rita, title="Walk", data=video_clips.make_clip(
        "gradients", width=640, height=360, fps=30, seconds=4.0, seed=31))
    pdf = make_work(rita, title="Tides", data=pdf_documents.text_pdf(pages=3))
    epub = make_work(rita, title="Book", data=next(iter(epub_books.standard_books().values())))
    return {name: (work, *_sold_copy(bob, work, device_of))
            for name, work in (("video", video), ("pdf", pdf), ("epub", epub))}


def test_leaked_copies_of_each_medium_name_the_buyers_licence(rita, shelf) -> None:
    video, video_copy, video_licence = shelf["video"]
    leaked = video_attacks.reencode_h264(video_attacks.excerpt(video_copy, 0.7, 2.5))
    report = trace_copy(owner=rita, data=leaked, name="walk.mp4")
    assert (report.outcome, report.work) == (TraceOutcome.MARKED, video)
    assert list(report.licences.all()) == [video_licence]
    assert "picture" in report.details["marks that named the payload"]

    pdf, pdf_copy, pdf_licence = shelf["pdf"]
    with pikepdf.open(io.BytesIO(pdf_copy)) as document:
        pages = pikepdf.new()
        pages.pages.extend(document.pages[1:3])
        out = io.BytesIO()
        pages.save(out)
    report = trace_copy(owner=rita, data=out.getvalue(), name="pages.pdf")
    assert (report.outcome, report.work) == (TraceOutcome.MARKED, pdf)
    assert list(report.licences.all()) == [pdf_licence]

    epub, epub_copy, epub_licence = shelf["epub"]
    report = trace_copy(owner=rita, data=epub_books.repackage(epub_books.strip_identifier(
        epub_copy)), name="book.epub")
    assert (report.outcome, report.work) == (TraceOutcome.MARKED, epub)
    assert list(report.licences.all()) == [epub_licence]
    assert "identifier" not in report.details["marks that named the payload"]


def test_another_rights_holder_learns_nothing_from_a_copy(rob, shelf) -> None:
    for _work, copy, _licence in shelf.values():
        report = trace_copy(owner=rob, data=copy)
        assert report.outcome == TraceOutcome.UNKNOWN
        assert report.work is None
        assert list(report.licences.all()) == []


def test_an_unmarked_video_or_document_names_nobody(rita, shelf) -> None:
    other = video_clips.make_clip("gradients", width=320, height=180, fps=30, seconds=3.0,
                                  seed=32)
    assert trace_copy(owner=rita, data=other).outcome == TraceOutcome.UNKNOWN
    other_pdf = pdf_documents.text_pdf(pages=2, start=40)
    assert trace_copy(owner=rita, data=other_pdf).outcome == TraceOutcome.UNKNOWN


@pytest.mark.parametrize(("data", "code"), [
    (b"\x00\x00\x00\x18ftypisom" + bytes(600), "unreadable_video"),
    (b"%PDF-1.7\n" + bytes(600), "unreadable_file"),
])
def test_a_damaged_suspect_is_a_clear_error_and_leaves_no_report(rita, shelf, data,
                                                                code) -> None:
    with pytest.raises(ServiceError) as caught:
        trace_copy(owner=rita, data=data)
    assert caught.value.code == code
    assert TraceReport.objects.count() == 0
