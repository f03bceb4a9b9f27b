"""The dashboards: the rights holder's studio (sales, works, payouts, traces, CSV), "My
works", and the platform's billing dashboard for staff.

Every expected figure is worked out by hand from the rows each test makes. The default
split is a 10% fee and a 10% seeding share; a sale settled with no serving peer gives
the seeding share to the rights holder, so a 10.00 sale settles as 9.00 royalty and 1.00
fee.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from exchange.audit.models import AuditEvent
from exchange.ledger.models import JournalEntry
from exchange.metering.models import MeteredOrder, Receipt
from exchange.metering.services import orders_record
from exchange.payments.models import Payout
from exchange.payments.services import payout_request, topup_create
from exchange.peers.services import Announced, peer_announce
from exchange.portal.charts import major_text, period_label, period_of, recent_periods
from exchange.purchases.models import Purchase, Settlement
from exchange.purchases.selectors import Period
from exchange.purchases.services import purchase_create, purchase_refund, purchase_settle
from exchange.tracing.services import trace_copy
from licensing.core.bitfield import bitfield_encode, bitfield_full

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def _noon(days_ago: int) -> dt.datetime:
    """Noon (in the site's zone) ``days_ago`` days before today: far from any edge."""
    day = TODAY() - dt.timedelta(days=days_ago)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


@pytest.fixture
def sell(fund: Callable[..., None], device_of: Callable[..., Any]) -> Callable[..., Purchase]:
    """Sell ``work`` to ``buyer`` through the purchase service; settle it (no serving
    peer) unless told; ``days_ago`` moves the sale (and its settlement) back in time."""
    devices: dict[int, Any] = {}

    def make(buyer: Any, work: Any, *, settle: bool = True, days_ago: int = 0) -> Purchase:
        fund(buyer, work.price_minor, work.currency)
        if buyer.pk not in devices:
            devices[buyer.pk] = device_of(buyer)[1]
        purchase = purchase_create(buyer=buyer, work_id=work.pk,
                                   device_id=devices[buyer.pk].device_id)
        if settle:
            purchase_settle(purchase_id=purchase.pk, peer_bytes={})
        if days_ago:
            moment = _noon(days_ago)
            Purchase.objects.filter(pk=purchase.pk).update(
                created_at=moment, closed_at=moment if settle else None)
            Settlement.objects.filter(purchase=purchase).update(created_at=moment)
        purchase.refresh_from_db()
        return purchase

    return make


def _json(page: str, element_id: str) -> dict[str, Any]:
    """The chart data a page embeds with ``json_script`` under ``element_id``."""
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      page, re.S)
    assert match, f"no chart data {element_id}"
    return dict(json.loads(match.group(1)))


def _csv(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return bytes(response.content).decode()


# --- periods: labels always carry their year ------------------------------------------

def test_period_labels_carry_the_year_and_iso_weeks_their_own_year() -> None:
    assert period_label(dt.date(2026, 12, 3), "day") == "2026-12-03"
    assert period_label(dt.date(2026, 11, 1), "month") == "2026-11"
    # Thursday 3 December 2026 is in ISO week 49 (Monday 30 November).
    assert period_of(dt.date(2026, 12, 3), "week") == dt.date(2026, 11, 30)
    assert period_label(dt.date(2026, 11, 30), "week") == "2026-W49"
    # Monday 30 December 2024 opens ISO week 1 of 2025; Friday 1 January 2027 is still
    # in week 53 of 2026, which began on Monday 28 December 2026.
    assert period_label(dt.date(2024, 12, 30), "week") == "2025-W01"
    assert period_of(dt.date(2027, 1, 1), "week") == dt.date(2026, 12, 28)
    assert period_label(dt.date(2026, 12, 28), "week") == "2026-W53"


def test_the_studio_shows_twelve_months_thirty_days_or_twelve_weeks() -> None:
    months = recent_periods(dt.date(2026, 1, 15), "month")
    assert [period_label(m, "month") for m in (months[0], months[-1])] == ["2025-02", "2026-01"]
    assert len(months) == 12
    days = recent_periods(dt.date(2026, 3, 1), "day")
    assert (days[0], days[-1], len(days)) == (dt.date(2026, 1, 31), dt.date(2026, 3, 1), 30)
    weeks = recent_periods(dt.date(2026, 1, 15), "week")
    assert [period_label(w, "week") for w in (weeks[0], weeks[-1])] == ["2025-W44", "2026-W03"]


def test_chart_values_are_exact_major_units_in_each_currencys_exponent() -> None:
    assert major_text(1250, "EUR") == "12.50"
    assert major_text(15000, "KRW") == "15000"
    assert major_text(1500, "JPY") == "1500"
    assert major_text(125, "KWD") == "0.125"
    assert major_text(0, "EUR") == "0.00"
    assert major_text(12345678901234567, "EUR") == "123456789012345.67"


# --- the studio -------------------------------------------------------------------------

def test_a_rights_holder_sees_only_their_own_sales(rita, rob, bob, carol, make_work, sell,
                                                   client) -> None:
    harbour = make_work(rita, title="Harbour at dawn", price_minor=1000)
    secret = make_work(rob, title="Rob's lighthouse", price_minor=700)
    sell(bob, harbour)
    sell(carol, harbour)
    sell(bob, secret)
    client.force_login(rita)
    page = client.get("/studio/sales/").content.decode()
    assert "Harbour at dawn" in page
    assert "€20.00" in page  # two sales of 10.00
    assert "€18.00" in page  # two royalties of 9.00
    assert "lighthouse" not in page
    assert "€7.00" not in page
    works = _csv(client, "/studio/sales/works.csv")
    assert "Harbour at dawn" in works
    assert "lighthouse" not in works
    client.force_login(rob)
    works = _csv(client, "/studio/sales/works.csv")
    assert "Harbour" not in works
    assert ",EUR,1,700,630,0,0\r\n" in works


def test_per_work_figures_sum_sales_royalties_bytes_and_seeders(
    rita, bob, carol, make_work, sell, device_of, client
) -> None:
    """Harbour: three sales, one refunded (out), one settled (9.00 royalty), one still in
    escrow (no royalty yet), gross 20.00; Carol's agent served 300 + 200 bytes of it and
    holds all of it. Temple (KRW): one settled sale, 13,500 royalty. Lantern: none."""
    harbour = make_work(rita, title="Harbour", price_minor=1000)
    temple = make_work(rita, title="Temple", price_minor=15000, currency="KRW")
    lantern = make_work(rita, title="Lantern", price_minor=500)
    settled = sell(bob, harbour)
    sell(carol, harbour, settle=False)
    refunded = sell(bob, harbour, settle=False)
    purchase_refund(purchase_id=refunded.pk, reason="test")
    sell(bob, temple)
    _, carols_device = device_of(carol, "seedbox")
    now = int(timezone.now().timestamp())
    orders_record([
        {"licence": str(settled.licence_id), "nonce": nonce, "device": carols_device.device_id,
         "user": carol.pk, "piece": piece, "bytes": size, "iat": now}
        for nonce, piece, size in (("n1", 0, 300), ("n2", 1, 200))
    ])
    pieces = harbour.package.piece_count
    peer_announce(user=carol, device_id=carols_device.device_id, host="", port=6881,
                  source="192.0.2.7", replace=True,
                  holdings=[Announced(work_id=str(harbour.pk),
                                      bitfield=bitfield_encode(bitfield_full(pieces)))])

    client.force_login(rita)
    assert _csv(client, "/studio/sales/works.csv") == (
        "work_id,title,currency,sales,gross_minor,royalty_minor,bytes_served,live_seeders\r\n"
        f"{lantern.pk},Lantern,EUR,0,0,0,0,0\r\n"
        f"{temple.pk},Temple,KRW,1,15000,13500,0,0\r\n"
        f"{harbour.pk},Harbour,EUR,2,2000,900,500,1\r\n"
    )
    mine = client.get("/studio/works/").content.decode()
    assert f'src="/api/v1/works/{harbour.pk}/preview/"' in mine
    assert "₩15,000" in mine
    assert "€20.00" in mine
    assert "500 bytes" in mine


def test_a_work_without_a_preview_gets_a_tile_of_its_kind(rita, make_work, client) -> None:
    work = make_work(rita, title="Still processing", ready=False)
    client.force_login(rita)
    page = client.get("/studio/works/").content.decode()
    assert f"/api/v1/works/{work.pk}/preview/" not in page
    assert '<span class="thumb">Image</span>' in page


def test_earnings_group_by_day_week_and_month_with_year_qualified_labels(
    rita, bob, make_work, sell, client
) -> None:
    """Four sales of 10.00 (9.00 royalty each): today, a day ago, eight days ago and forty
    days ago. Each CSV row is a period; the expected rows put each sale in the period
    that holds its day."""
    work = make_work(rita, price_minor=1000)
    ages = (0, 1, 8, 40)
    for days_ago in ages:
        sell(bob, work, days_ago=days_ago)
    client.force_login(rita)
    today = TODAY()
    sale_days = [today - dt.timedelta(days=a) for a in ages]

    def expected(by: Period, periods: list[dt.date]) -> str:
        lines = ["period,currency,sales,gross_minor,royalty_minor\r\n"]
        for start in periods:
            count = sum(1 for day in sale_days if period_of(day, by) == start)
            lines.append(f"{period_label(start, by)},EUR,{count},{1000 * count},"
                         f"{900 * count}\r\n")
        return "".join(lines)

    # By day: the last thirty days, today last; the sale forty days ago is outside.
    days = [today - dt.timedelta(days=n) for n in range(29, -1, -1)]
    by_day = _csv(client, "/studio/sales/earnings.csv?by=day")
    assert by_day == expected("day", days)
    assert f"{today.isoformat()},EUR,1,1000,900\r\n" in by_day
    assert by_day.count(",EUR,1,1000,900\r\n") == 3
    assert by_day.count(",EUR,0,0,0\r\n") == 27
    # By ISO week: twelve weeks, labelled like 2026-W49; forty days ago is inside.
    mondays = [period_of(today, "week") - dt.timedelta(weeks=n) for n in range(11, -1, -1)]
    by_week = _csv(client, "/studio/sales/earnings.csv?by=week")
    assert by_week == expected("week", mondays)
    assert all(re.fullmatch(r"\d{4}-W\d{2}", line.split(",")[0])
               for line in by_week.splitlines()[1:])
    assert sum(int(line.split(",")[2]) for line in by_week.splitlines()[1:]) == 4
    # By month: twelve months, labelled like 2026-11; all four sales are inside.
    by_month = _csv(client, "/studio/sales/earnings.csv?by=month")
    assert by_month == expected("month", recent_periods(today, "month"))
    assert by_month.splitlines()[-1].startswith(f"{today.year:04d}-{today.month:02d},EUR,")
    # Anything else than day, week or month is a month.
    assert _csv(client, "/studio/sales/earnings.csv?by=year") == by_month

    page = client.get("/studio/sales/?by=week").content.decode()
    chart = _json(page, "earnings-EUR")
    assert chart["labels"] == [period_label(m, "week") for m in mondays]
    assert chart["unit"] == {"type": "currency", "currency": "EUR"}
    assert (chart["x_title"], chart["y_title"]) == ("ISO week", "Amount (EUR)")
    gross, royalty = chart["series"]
    this_week = sum(1 for day in sale_days if period_of(day, "week") == mondays[-1])
    assert gross["values"][-1] == f"{10 * this_week}.00"
    assert royalty["texts"][-1] == f"€{9 * this_week}.00"
    assert '<a href="?by=week" aria-current="page">' in page


def test_payouts_and_traces_export_exactly(rita, bob, make_work, sell, client) -> None:
    """A 20.00 sale settles 18.00 royalty; Rita asks for 10.00 of it (still pending: the
    provider has not answered) and traces a file that is none of her works."""
    work = make_work(rita, price_minor=2000)
    sell(bob, work)
    payout = payout_request(user=rita, source="earnings", amount_minor=1000, currency="EUR")
    report = trace_copy(owner=rita, data=b"not a picture at all", name="=leak.txt")
    client.force_login(rita)
    payout.refresh_from_db()
    assert _csv(client, "/studio/sales/payouts.csv") == (
        "payout_id,requested_at,source,currency,amount_minor,state,failure_reason\r\n"
        f"{payout.pk},{payout.created_at.astimezone(dt.UTC).isoformat()},earnings,EUR,1000,"
        "pending,\r\n"
    )
    traced = report.created_at.astimezone(dt.UTC).isoformat()
    assert _csv(client, "/studio/sales/traces.csv") == (
        "report_id,traced_at,file,sha256,size_bytes,outcome,work_id,work_title,licences\r\n"
        f"{report.pk},{traced},'=leak.txt,{report.suspect_sha256},20,{report.outcome},,,\r\n"
    )
    page = client.get("/studio/sales/").content.decode()
    assert "1 payout pending" in page
    assert f'href="/studio/trace/{report.pk}/"' in page
    # 18.00 earned, 10.00 asked for: 8.00 left, below the 10.00 minimum.
    assert "€8.00" in page
    client.force_login(bob)  # nobody else's CSV holds them
    assert _csv(client, "/studio/sales/payouts.csv").count("\r\n") == 1
    assert _csv(client, "/studio/sales/traces.csv").count("\r\n") == 1


def test_an_unknown_csv_table_is_not_found(rita, client) -> None:
    client.force_login(rita)
    response = client.get("/studio/sales/purchases.csv")
    assert response.status_code == 404
    assert "portal/not_found.html" in [t.name for t in response.templates]


def test_the_studio_and_its_csv_need_a_login(client) -> None:
    for path in ("/studio/sales/", "/studio/sales/works.csv", "/studio/works/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_charts_are_data_and_a_table_with_no_inline_script(rita, bob, make_work, sell,
                                                            client) -> None:
    sell(bob, make_work(rita, price_minor=1000))
    client.force_login(rita)
    page = client.get("/studio/sales/").content.decode()
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    canvas = re.search(r'<canvas role="img" aria-label="([^"]+)" data-chart="earnings-EUR">',
                       page)
    assert canvas
    assert canvas.group(1).startswith("Earnings per month, EUR.")
    figure = page[page.index('id="earnings-EUR-caption"'):]
    assert figure.index("<details open data-chart-table>") < figure.index("</figure>")
    assert '<th scope="row">' in figure
    assert "chart.umd.min.js" in page
    assert "dashboards.js" in page


def test_the_studio_speaks_korean(rita, bob, make_work, sell, client) -> None:
    sell(bob, make_work(rita, title="Temple", price_minor=15000, currency="KRW"))
    client.force_login(rita)
    page = client.get("/studio/sales/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert '<html lang="ko">' in page
    assert "₩15,000" in page
    assert _json(page, "earnings-KRW")["locale"] == "ko"


# --- the billing dashboard --------------------------------------------------------------

@pytest.fixture
def books(rita, bob, carol, make_work, sell, fund, device_of,
          django_capture_on_commit_callbacks) -> dict[str, Any]:
    """Inside the range (the last ten days): a 10.00 sale settled (1.00 fee), a 12.00
    sale refunded, a 14.00 sale still in escrow, a ₩15,000 sale settled (₩1,500 fee), a
    declined 25.00 top-up, a payout returned and one pending, a flagged receipt, 500
    bytes served. Outside (thirty days ago): a 16.00 sale, settled then, and 999 bytes."""
    harbour = make_work(rita, title="Harbour", price_minor=1000)
    inside = sell(bob, harbour, days_ago=2)
    harbour.price_minor = 1200
    harbour.save(update_fields=["price_minor"])
    refunded = sell(bob, harbour, settle=False, days_ago=3)
    purchase_refund(purchase_id=refunded.pk, reason="no receipt")
    Purchase.objects.filter(pk=refunded.pk).update(closed_at=_noon(3))
    harbour.price_minor = 1400
    harbour.save(update_fields=["price_minor"])
    held = sell(carol, harbour, settle=False, days_ago=1)
    harbour.price_minor = 1600
    harbour.save(update_fields=["price_minor"])
    outside = sell(carol, harbour, days_ago=30)
    temple = make_work(rita, title="Temple", price_minor=15000, currency="KRW")
    sell(bob, temple, days_ago=2)
    with django_capture_on_commit_callbacks(execute=True):
        topup_create(user=carol, amount_minor=2500, currency="EUR",
                     options={"scenario": "decline"})
    # Rita's royalty so far: 9.00 + 14.40 (the 16.00 sale) = 23.40.
    with django_capture_on_commit_callbacks(execute=True):
        returned = payout_request(user=rita, source="earnings", amount_minor=1100,
                                  currency="EUR", options={"scenario": "fail"})
    pending = payout_request(user=rita, source="earnings", amount_minor=1200, currency="EUR")
    Receipt.objects.create(
        licence_id=held.licence_id, receipt_id="r-flagged", token="-", output_sha256="0" * 64,
        marked=True, claimed_bytes={}, settle_after=timezone.now(), needs_review=True,
        review_reason="claimed bytes differ from the orders")
    _, seedbox = device_of(carol, "seedbox")
    now = int(timezone.now().timestamp())
    orders_record([{"licence": str(inside.licence_id), "nonce": nonce, "device": seedbox.device_id,
                    "user": carol.pk, "piece": piece, "bytes": size, "iat": now}
                   for nonce, piece, size in (("a", 0, 300), ("b", 1, 200), ("c", 2, 999))])
    MeteredOrder.objects.filter(nonce="c").update(recorded_at=_noon(30))
    peer_announce(user=carol, device_id=seedbox.device_id, host="", port=6881,
                  source="192.0.2.7", replace=True, holdings=[])
    return {"outside": outside, "returned": returned, "pending": pending}


def _tiles(page: str, currency: str) -> dict[str, tuple[str, str]]:
    """The figure tiles of one currency's section: label -> (figure, note)."""
    section = page[page.index(f'id="currency-{currency}"'):]
    section = section[:section.index("</dl>")]
    return {label: (figure, note) for label, figure, note in re.findall(
        r"<div><dt>(.*?)</dt><dd>(.*?)<small>(.*?)</small></dd></div>", section)}


def _dashboard(client: Any, admin_user: Any, **query: str) -> str:
    client.force_login(admin_user)
    response = client.get("/dashboard/", query)
    assert response.status_code == 200
    return str(response.content.decode())


def test_the_dashboard_sums_a_range_per_currency(books, admin_user, client) -> None:
    first = (TODAY() - dt.timedelta(days=9)).isoformat()
    page = _dashboard(client, admin_user, **{"from": first, "to": TODAY().isoformat()})
    tiles = _tiles(page, "EUR")
    assert tiles["Gross volume"] == ("€36.00", "3 purchases")  # not the 16.00 outside
    # Fees of the settlements in the range: the 10.00 sale's (the 16.00 one settled
    # thirty days ago).
    assert tiles["Net revenue (platform fees)"][0] == "€1.00"
    assert tiles["Refunds"] == ("€12.00", "1 refund")
    assert tiles["Held in escrow"] == ("€14.00", "1 purchase at the end of the range")
    assert tiles["Failed top-ups"] == ("€25.00", "1 top-up")
    assert "€16.00" not in page
    chart = _json(page, "volume-EUR")
    assert chart["labels"][0] == first
    assert chart["labels"][-1] == TODAY().isoformat()
    two_days_ago = chart["labels"].index((TODAY() - dt.timedelta(days=2)).isoformat())
    assert chart["series"][0]["values"][two_days_ago] == "10.00"
    assert chart["series"][1]["values"][two_days_ago] == "1.00"
    assert sum(Decimal(v) for v in chart["series"][0]["values"]) == Decimal("36.00")
    # Peers: 500 bytes in the range (the 999 recorded thirty days ago are outside).
    assert "<dd>500\xa0bytes<small>2 metered orders</small></dd>" in page
    traffic = _json(page, "traffic")
    assert traffic["unit"] == {"type": "bytes"}
    assert traffic["y_title"] == "Bytes"
    assert traffic["series"][0]["values"][-1] == "500"


def test_a_won_amount_has_no_decimals(books, admin_user, client) -> None:
    page = _dashboard(client, admin_user, days="7")
    tiles = _tiles(page, "KRW")
    assert tiles["Gross volume"] == ("₩15,000", "1 purchase")
    assert tiles["Net revenue (platform fees)"][0] == "₩1,500"
    assert "₩15,000.00" not in page
    values = _json(page, "volume-KRW")["series"][0]["values"]
    assert "15000" in values
    assert _json(page, "volume-KRW")["series"][0]["texts"][values.index("15000")] == "₩15,000"


def test_the_dashboard_lists_what_needs_a_person(books, admin_user, client) -> None:
    page = _dashboard(client, admin_user)
    queue = page[page.index('id="queue-title"'):page.index('id="topups-title"')]
    assert "€12.00" in queue  # pending
    assert "€11.00" in queue  # returned
    assert "The receiving account was closed." in queue
    assert "The card was declined." in page
    events = page[page.index('id="webhooks-title"'):page.index('id="receipts-title"')]
    assert "topup.failed" in events
    assert "payout.failed" in events
    receipts = page[page.index('id="receipts-title"'):page.index('id="peers-title"')]
    assert "claimed bytes differ from the orders" in receipts
    assert "/admin/metering/receipt/" in receipts


def test_the_dashboard_defaults_to_thirty_days_and_explains_bad_dates(admin_user,
                                                                      client) -> None:
    default_first = (TODAY() - dt.timedelta(days=29)).isoformat()
    page = _dashboard(client, admin_user)
    assert f'name="from" value="{default_first}"' in page
    assert '<a href="?days=30" aria-current="page">' in page
    for query in ({"from": "2026-13-01", "to": "2026-12-31"}, {"from": "soon"},
                  {"from": "2026-12-03", "to": "2026-11-03"}):
        page = _dashboard(client, admin_user, **query)
        assert 'role="alert"' in page
        assert "Showing the last 30 days instead." in page
        assert f'name="from" value="{default_first}"' in page
    page = _dashboard(client, admin_user, days="90")
    assert f'name="from" value="{(TODAY() - dt.timedelta(days=89)).isoformat()}"' in page


def test_only_staff_see_the_dashboard_in_the_portals_look(rita, client) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/dashboard/"
    client.force_login(rita)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert "portal/forbidden.html" in [t.name for t in response.templates]
    assert "Admins only" in response.content.decode()


def test_payout_retry_is_for_staff_and_asks_again_only_for_a_pending_payout(
        books, rita, admin_user, client, django_capture_on_commit_callbacks) -> None:
    """A returned payout is not retried (its money is back with its holder); a pending
    one is asked for again under the same reference, which pays it once however often."""
    returned, pending = books["returned"], books["pending"]
    path = f"/dashboard/payouts/{returned.pk}/retry/"
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"
    client.force_login(rita)
    assert client.post(path).status_code == 403
    client.force_login(admin_user)
    assert client.get(path).status_code == 405
    before = (JournalEntry.objects.count(), AuditEvent.objects.count(),
              list(Payout.objects.values_list("pk", "state").order_by("pk")))
    response = client.post(path, follow=True)
    assert response.redirect_chain == [("/dashboard/", 302)]
    assert "Only a pending payout is retried; this one is Returned." in (
        response.content.decode())
    assert (JournalEntry.objects.count(), AuditEvent.objects.count(),
            list(Payout.objects.values_list("pk", "state").order_by("pk"))) == before

    path = f"/dashboard/payouts/{pending.pk}/retry/"
    assert 'action="' + path + '"' in _dashboard(client, admin_user)
    entries = JournalEntry.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, follow=True)
    assert "Asked the payment provider again" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == "paid"
    assert JournalEntry.objects.count() == entries + 1  # payout-pending -> out, once
    assert AuditEvent.objects.filter(action="payout.retry").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, follow=True)
    assert "Only a pending payout is retried; this one is Paid." in response.content.decode()
    assert JournalEntry.objects.count() == entries + 1
    assert client.post("/dashboard/payouts/not-a-payout/retry/").status_code == 404
