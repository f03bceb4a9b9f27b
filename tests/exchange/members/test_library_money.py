"""A re-issued licence is not a sale: no money moves, its receipt settles the purchase at
most once, a refund takes every device's licence back, and its mark names the buyer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Sum
from django.test import Client

import watermark
from exchange.catalogue.demo_images import demo_image_png
from exchange.ledger.models import JournalEntry, Posting
from exchange.licensing.library import licence_move, licence_reissue
from exchange.licensing.models import Licence
from exchange.metering import services as metering
from exchange.metering.models import Receipt
from exchange.operations import books
from exchange.purchases.models import Purchase, PurchaseState, Settlement
from exchange.purchases.services import purchase_create, purchase_refund
from exchange.tracing.models import TraceOutcome
from exchange.tracing.services import trace_copy
from licensing.core import sign_order, sign_receipt
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(rita, bob, make_work, fund, device_of, settings) -> dict[str, Any]:
    settings.METERING_GRACE_SECONDS = 0
    work = make_work(rita, price_minor=1000,
                     data=demo_image_png(seed=4, width=640, height=480))
    fund(bob, 5000)
    laptop = device_of(bob, "laptop")
    desktop = device_of(bob, "desktop")
    purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop[1].device_id)
    return {"work": work, "purchase": purchase, "licence": purchase.licence,
            "laptop": laptop, "desktop": desktop}


def _money() -> tuple[int, int, list[tuple[int, int]]]:
    return (JournalEntry.objects.count(), Purchase.objects.count(),
            sorted(Posting.objects.values("account_id").annotate(total=Sum("amount"))
                   .values_list("account_id", "total")))


def _receipt(keys: Any, licence: Licence, served: dict[str, int]) -> str:
    return sign_receipt(keys, licence_id=str(licence.pk), output_sha256=b"\x22" * 32,
                        served=served, marked=True, issued_at=int(time.time()))


def test_a_reissue_and_a_move_move_no_money(owned, bob, device_of) -> None:
    before = _money()
    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=owned["desktop"][1].device_id).licence
    _keys, tablet = device_of(bob, "tablet")
    licence_move(member=bob, source=reissued, to_device_id=tablet.device_id)
    assert _money() == before
    assert books.books_check() == []


def test_a_reissued_licences_receipt_settles_the_purchase_once(owned, bob, carol, api,
                                                               device_of) -> None:
    """The laptop never delivered; the desktop did. Its receipt settles the sale, paying
    Carol the seeding credit for what she served the desktop; the laptop's later receipt
    is kept for the marking audit and settles nothing."""
    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=owned["desktop"][1].device_id).licence
    _keys, carol_device = device_of(carol, "server")
    package = owned["work"].package
    size = package.ciphertext_size
    tokens = []
    for piece in range(package.piece_count):
        length = (package.piece_size + 16 if piece < package.piece_count - 1
                  else size - (package.piece_count - 1) * (package.piece_size + 16))
        tokens.append(sign_order(owned["desktop"][0], licence_id=str(reissued.pk),
                                 peer_id=carol_device.device_id, piece=piece,
                                 byte_count=length, issued_at=int(time.time())))
    submitted = api(carol).post("/api/v1/metering/orders/", {"orders": tokens},
                                format="json").json()
    assert submitted["accepted"] == len(tokens)
    response = api(bob).post(f"/api/v1/licences/{reissued.pk}/receipt/",
                             {"receipt": _receipt(owned["desktop"][0], reissued,
                                                  {carol_device.device_id: size})},
                             format="json")
    assert response.status_code == 201, response.json()
    assert metering.receipts_settle_due() == 1
    purchase = Purchase.objects.get()
    assert purchase.state == PurchaseState.SETTLED
    settlement = Settlement.objects.get()
    # 1000 at the default rates: carol served the whole work, so the whole seeding share.
    assert settlement.peer_bytes == {str(carol.pk): size}
    assert settlement.seeding_minor == 1000 * settings.SEEDING_SHARE_BPS // 10_000
    entries = JournalEntry.objects.count()
    late = api(bob).post(f"/api/v1/licences/{owned['licence'].pk}/receipt/",
                         {"receipt": _receipt(owned["laptop"][0], owned["licence"], {})},
                         format="json")
    assert late.status_code == 201, late.json()
    assert metering.receipts_settle_due() == 1  # marked done ...
    assert JournalEntry.objects.count() == entries  # ... and nothing posted twice
    assert Settlement.objects.count() == 1
    assert Receipt.objects.count() == 2
    assert books.books_check() == []


def test_a_delivered_reissue_keeps_the_purchase_from_the_overdue_refund(owned, bob,
                                                                        api) -> None:
    from django.utils import timezone

    from exchange.purchases.services import purchases_refund_overdue

    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=owned["desktop"][1].device_id).licence
    api(bob).post(f"/api/v1/licences/{reissued.pk}/receipt/",
                  {"receipt": _receipt(owned["desktop"][0], reissued, {})}, format="json")
    Purchase.objects.update(receipt_due_at=timezone.now() - timezone.timedelta(hours=1))
    assert purchases_refund_overdue() == 0
    assert Purchase.objects.get().state == PurchaseState.HELD


def test_a_refund_revokes_the_licence_on_every_device(owned, bob) -> None:
    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=owned["desktop"][1].device_id).licence
    purchase_refund(purchase_id=owned["purchase"].pk, reason="test")
    assert Licence.objects.get(pk=reissued.pk).revoked_at is not None
    assert Licence.objects.get(pk=owned["licence"].pk).revoked_at is not None


def test_a_refunded_purchases_reissue_sends_no_receipt(owned, bob, api) -> None:
    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=owned["desktop"][1].device_id).licence
    purchase_refund(purchase_id=owned["purchase"].pk, reason="test")
    response = api(bob).post(f"/api/v1/licences/{reissued.pk}/receipt/",
                             {"receipt": _receipt(owned["desktop"][0], reissued, {})},
                             format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "purchase_closed"
    assert not Receipt.objects.exists()


def test_a_reissued_copy_traces_to_the_member_and_that_device(owned, rita, bob) -> None:
    desktop_keys, desktop = owned["desktop"]
    reissued = licence_reissue(member=bob, source=owned["licence"],
                               device_id=desktop.device_id).licence
    ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
    token = read_licence(reissued.token, keyring=ring, now=int(time.time()),
                         device_id=desktop.device_id)
    master = (settings.MASTERS_DIR / owned["work"].master_path).read_bytes()
    copy = watermark.embed_bytes(master, token.unwrap_keys(desktop_keys).watermark_key,
                                 token.watermark_payload)
    report = trace_copy(owner=rita, data=copy, name="found.png")
    assert report.outcome in {TraceOutcome.MARKED, TraceOutcome.DELIVERED_COPY}
    named = list(report.licences.all())
    assert named == [reissued]
    assert named[0].buyer == bob
    assert named[0].device == desktop
