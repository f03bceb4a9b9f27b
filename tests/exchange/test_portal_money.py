"""The money pages of the portal: wallet, statements, purchases, sales, the dashboard."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from exchange.payments.models import Payout, TopUp
from exchange.purchases.models import Purchase
from exchange.purchases.services import purchase_settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold(rita, bob, carol, make_work, fund, device_of, api):
    """One settled sale of Rita's work to Bob, served by Carol."""
    work = make_work(rita, title="Harbour at dawn", price_minor=1250)
    fund(bob, 5000)
    _, device = device_of(bob)
    api(bob).post("/api/v1/purchases/", {"work": str(work.pk), "device": device.device_id},
                  format="json", HTTP_IDEMPOTENCY_KEY="k")
    purchase = Purchase.objects.get()
    purchase_settle(purchase_id=purchase.pk,
                    peer_bytes={carol.pk: work.package.ciphertext_size})
    return purchase


def _once(page: str) -> str:
    match = re.search(r'name="once" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_a_top_up_form_submitted_twice_tops_up_once(bob, client,
                                                    django_capture_on_commit_callbacks) -> None:
    client.force_login(bob)
    page = client.get("/wallet/").content.decode()
    form = {"once": _once(page), "amount": "25.00", "currency": "EUR",
            "scenario": "succeed"}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/wallet/topup/", form).status_code == 302
        assert client.post("/wallet/topup/", form).status_code == 302
    assert TopUp.objects.count() == 1
    assert "€25.00" in client.get("/wallet/").content.decode()


def test_the_wallet_offers_the_test_providers_behaviours_only_where_it_is_on(
    bob, client, settings, django_capture_on_commit_callbacks
) -> None:
    client.force_login(bob)
    page = client.get("/wallet/").content.decode()
    assert "Test provider behaviour" in page
    form = {"once": _once(page), "amount": "25.00", "currency": "EUR",
            "scenario": "decline"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/wallet/topup/", form)
    assert TopUp.objects.get().state == "failed"

    settings.TEST_PAYMENTS = False
    page = client.get("/wallet/").content.decode()
    assert "Test provider behaviour" not in page
    form = {"once": _once(page), "amount": "25.00", "currency": "EUR"}
    page = client.post("/wallet/topup/", form, follow=True).content.decode()
    assert "Payments are not available" in page
    assert TopUp.objects.count() == 1


def test_a_payout_above_the_balance_shows_an_error_and_moves_nothing(rita, client) -> None:
    client.force_login(rita)
    form = {"once": _once(client.get("/wallet/").content.decode()), "account": "earnings",
            "amount": "50", "currency": "EUR"}
    page = client.post("/wallet/payout/", form, follow=True).content.decode()
    assert "Not enough money" in page
    assert not Payout.objects.exists()


def test_the_statement_shows_opening_movements_and_closing(sold, bob, client) -> None:
    client.force_login(bob)
    period = timezone.now().strftime("%Y-%m")
    page = client.get(f"/statements/{period}/").content.decode()
    assert "Opening balance" in page
    assert "Closing balance" in page
    assert "€37.50" in page
    csv = client.get(f"/statements/{period}/", {"format": "csv"})
    assert csv["Content-Type"] == "text/csv"
    assert b"closing" in csv.content
    assert client.get("/statements/2026-13/").status_code == 404


def test_the_buyer_sees_purchases_and_invoices_others_do_not(sold, bob, carol, client) -> None:
    client.force_login(bob)
    assert "Harbour at dawn" in client.get("/purchases/").content.decode()
    invoice = client.get(f"/purchases/{sold.pk}/invoice/").content.decode()
    assert "PM-" in invoice
    assert "€12.50" in invoice
    client.force_login(carol)
    assert client.get(f"/purchases/{sold.pk}/invoice/").status_code == 404


def test_the_rights_holder_sees_sales_as_a_chart(sold, rita, client) -> None:
    client.force_login(rita)
    page = client.get("/studio/sales/").content.decode()
    assert 'role="img"' in page
    assert 'id="earnings-EUR" type="application/json"' in page
    assert "€12.50" in page
    assert "€10.00" in page


def test_the_dashboard_is_for_admins_only(sold, admin_user, bob, client) -> None:
    client.force_login(bob)
    assert client.get("/dashboard/").status_code == 403
    client.force_login(admin_user)
    page = client.get("/dashboard/").content.decode()
    assert "€1.25" in page  # the platform fee
    assert 'id="volume-EUR" type="application/json"' in page
