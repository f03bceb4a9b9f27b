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


@pytest.fixture
def contributed(rob, bob, carol, fund, device_of, django_capture_on_commit_callbacks):
    """Bob and Carol ran a compute job of Rob's: 15.00 of compute credit each, 3.00 fee."""
    from tests.exchange.compute_market.support import compute_earned

    compute_earned(rob, [bob, carol], fund, device_of, django_capture_on_commit_callbacks)
    return bob


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


def test_the_wallet_shows_compute_credit_and_pays_it_out(
        contributed, client, django_capture_on_commit_callbacks) -> None:
    client.force_login(contributed)
    page = client.get("/wallet/").content.decode()
    assert re.search(r"<td>Compute credit</td><td>EUR</td><td class=\"num\">€15.00</td>", page)
    assert '<option value="compute">Compute credit</option>' in page
    assert '<option value="earnings">' not in page  # nothing to pay out there
    form = {"once": _once(page), "account": "compute", "amount": "10.00", "currency": "EUR"}
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/wallet/payout/", form, follow=True).content.decode()
    assert "Payout requested." in page
    payout = Payout.objects.get()
    assert (payout.source, payout.amount_minor, payout.state) == ("compute", 1000, "paid")
    assert re.search(r"<td>Compute credit</td><td>EUR</td><td class=\"num\">€5.00</td>", page)
    assert "<td>Compute credit</td><td class=\"num\">€10.00</td>" in page  # recent payouts


def test_the_statement_shows_compute_credit_and_its_entries(contributed, rob,
                                                            client) -> None:
    period = timezone.now().strftime("%Y-%m")
    client.force_login(contributed)
    page = client.get(f"/statements/{period}/").content.decode()
    assert "<h2>Compute credit · EUR" in page
    assert "Compute units paid<br><small>render: 1 unit(s)</small>" in page
    assert "€15.00" in page
    csv = client.get(f"/statements/{period}/", {"format": "csv"}).content.decode()
    assert "Compute credit,EUR,,,closing,,,1500" in csv
    client.force_login(rob)
    page = client.get(f"/statements/{period}/").content.decode()
    assert "Compute job budget into escrow" in page
    assert "Compute budget returned" in page


def test_the_library_and_the_studio_show_compute_credit(contributed, client) -> None:
    client.force_login(contributed)
    library = client.get("/purchases/").content.decode()
    assert "Compute earnings" in library
    assert "€15.00" in library
    studio = client.get("/studio/sales/").content.decode()
    assert "Compute credit: €15.00" in studio


def test_the_library_has_no_compute_section_without_compute_credit(sold, carol,
                                                                   client) -> None:
    client.force_login(carol)
    assert "Compute earnings" not in client.get("/purchases/").content.decode()


def test_the_dashboard_shows_the_compute_fees(contributed, admin_user, client) -> None:
    client.force_login(admin_user)
    page = client.get("/dashboard/").content.decode()
    assert re.search(r"<dt>Compute fees</dt><dd>€3.00<small>", page)
    assert re.search(r"<dt>Net revenue \(platform fees\)</dt><dd>€0.00<small>", page)
    chart = re.search(r'id="volume-EUR" type="application/json">(.*?)</script>', page)
    assert chart
    assert '"Compute fees"' in chart.group(1)
