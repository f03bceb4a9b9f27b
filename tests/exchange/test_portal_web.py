"""The portal as people use it: money typed in major units, the landing page, buying on
the web, the library, role-aware navigation, styled error pages, the Korean locale."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from exchange.catalogue.models import Work
from exchange.ledger.models import AccountKind
from exchange.licensing.models import Device, Licence
from exchange.money.entry import AmountError, major_text, parse_major
from exchange.purchases.models import Purchase

# --- amounts typed in major units (values worked out by hand) ------------------------------


@pytest.mark.parametrize(("text", "currency", "locale", "minor"), [
    ("12.50", "EUR", "en", 1250),
    ("12,50", "EUR", "de", 1250),
    ("€12.50", "EUR", "en", 1250),
    ("1,234.56", "USD", "en", 123456),
    ("15,000", "KRW", "ko", 15000),
    ("₩15,000", "KRW", "ko", 15000),
    ("15000", "KRW", "ko", 15000),
    ("1500", "JPY", "en", 1500),
    ("0.125", "KWD", "en", 125),
    ("7", "EUR", "en", 700),
    (" 12 345,67 ", "EUR", "fr", 1234567),
])
def test_amounts_typed_in_major_units_become_minor_units(text, currency, locale, minor) -> None:
    assert parse_major(text, currency, locale=locale) == minor


@pytest.mark.parametrize(("text", "currency", "locale", "says"), [
    ("12.505", "EUR", "en", "EUR has 2 decimals"),
    ("1.5", "KRW", "ko", "KRW has no smaller unit"),
    ("0.1234", "KWD", "en", "KWD has 3 decimals"),
    ("0", "EUR", "en", "above zero"),
    ("-3", "EUR", "en", "as a number"),
    ("1e5", "EUR", "en", "as a number"),
    ("NaN", "EUR", "en", "as a number"),
    ("12,5", "EUR", "en", "as a number"),
    ("twelve", "EUR", "en", "as a number"),
    ("", "EUR", "en", "Enter an amount"),
    ("99999999999999999999", "EUR", "en", "too large"),
])
def test_wrong_amounts_are_refused_with_a_reason(text, currency, locale, says) -> None:
    with pytest.raises(AmountError, match=says):
        parse_major(text, currency, locale=locale)


def test_amounts_shown_back_in_a_form_parse_again() -> None:
    assert major_text(1250, "EUR", locale="en") == "12.50"
    assert major_text(1250, "EUR", locale="de") == "12,50"
    assert major_text(15000, "KRW", locale="ko") == "15000"
    assert major_text(125, "KWD", locale="en") == "0.125"


@pytest.mark.django_db
def test_a_price_of_12_50_registers_as_1250_cents(rita, client, png) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(rita)
    page = client.get("/studio/works/new/").content.decode()
    assert 'inputmode="decimal"' in page
    assert "Price (minor units)" not in page
    # the common currencies come first, in their own group
    assert page.index('label="Common"') < page.index('value="KRW"') < page.index(
        'label="All currencies"')
    response = client.post("/studio/works/new/", {
        "title": "Dawn", "file": SimpleUploadedFile("dawn.png", png), "price": "12.50",
        "currency": "EUR", "allowed_uses": ["view", "download"], "licence_days": "365",
        "byte_allowance_multiple": "2"})
    assert response.status_code == 302
    assert Work.objects.get().price_minor == 1250


@pytest.mark.django_db
def test_a_korean_rights_holder_types_won_with_grouping(rita, client, png) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(rita)
    client.cookies["django_language"] = "ko"
    response = client.post("/studio/works/new/", {
        "title": "새벽 항구", "file": SimpleUploadedFile("dawn.png", png), "price": "15,000",
        "currency": "KRW", "allowed_uses": ["view", "download"], "licence_days": "365",
        "byte_allowance_multiple": "2"})
    assert response.status_code == 302
    work = Work.objects.get()
    assert (work.price_minor, work.currency, work.title) == (15000, "KRW", "새벽 항구")
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert '<html lang="ko">' in page
    assert "₩15,000" in page


@pytest.mark.django_db
def test_a_fraction_of_a_won_is_an_error_on_the_field_and_nothing_is_stored(rita, client,
                                                                            png) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(rita)
    response = client.post("/studio/works/new/", {
        "title": "Dawn", "file": SimpleUploadedFile("dawn.png", png), "price": "1500.5",
        "currency": "KRW", "allowed_uses": ["view"], "licence_days": "365",
        "byte_allowance_multiple": "2"})
    assert response.status_code == 400
    assert "KRW has no smaller unit" in response.content.decode()
    assert not Work.objects.exists()


@pytest.mark.django_db
def test_the_edit_form_shows_the_price_in_major_units(rita, client, make_work) -> None:
    work = make_work(rita, price_minor=1250)
    client.force_login(rita)
    page = client.get(f"/studio/works/{work.pk}/edit/").content.decode()
    assert re.search(r'name="price" value="12.50"', page)


# --- the landing page, navigation and error pages --------------------------------------------


@pytest.mark.django_db
def test_the_landing_page_says_what_peermark_is_and_how_to_start(client, rita, make_work) -> None:
    make_work(rita, title="Harbour at dawn")
    page = client.get("/").content.decode()
    for words in ("peer-to-peer", "How a sale works", "Get the agent", "Sell your work",
                  "Harbour at dawn", 'href="/get-the-agent/"',
                  'href="/signup/?role=rights_holder"', 'rel="icon"'):
        assert words in page, words


@pytest.mark.django_db
def test_a_search_from_the_landing_page_goes_to_the_catalogue(client) -> None:
    response = client.get("/", {"q": "lantern"})
    assert response.status_code == 302
    assert response["Location"] == "/catalogue/?q=lantern"


@pytest.mark.django_db
def test_sell_your_work_signs_up_a_rights_holder(client) -> None:
    page = client.get("/signup/?role=rights_holder").content.decode()
    assert re.search(r'value="rights_holder"[^>]*checked|checked[^>]*value="rights_holder"', page)


@pytest.mark.django_db
def test_navigation_offers_only_pages_the_user_can_open(client, bob, rita, admin_user) -> None:
    client.force_login(bob)
    page = client.get("/catalogue/").content.decode()
    assert 'href="/studio/works/"' not in page
    assert 'href="/dashboard/"' not in page
    assert 'href="/purchases/"' in page
    assert 'href="/wallet/"' in page
    client.force_login(rita)
    page = client.get("/catalogue/").content.decode()
    assert 'href="/studio/works/"' in page
    assert 'href="/dashboard/"' not in page
    client.force_login(admin_user)
    assert 'href="/dashboard/"' in client.get("/catalogue/").content.decode()


@pytest.mark.django_db
def test_an_unknown_page_is_a_styled_404(client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "portal.css" in page
    assert "Browse the catalogue" in page


@pytest.mark.django_db
def test_an_unknown_api_path_stays_json(client) -> None:
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_the_favicon_is_served(client) -> None:
    from django.contrib.staticfiles import finders

    assert finders.find("portal/favicon.svg")


# --- the wallet: payouts and the test provider's controls ------------------------------------


@pytest.mark.django_db
def test_a_buyer_is_not_offered_a_payout_of_earnings_he_does_not_have(client, bob) -> None:
    client.force_login(bob)
    page = client.get("/wallet/").content.decode()
    assert "Request payout" not in page
    assert "Royalty earnings" not in page
    assert "Nothing to pay out yet" in page


@pytest.mark.django_db
def test_the_test_provider_controls_are_set_apart_and_only_with_the_test_provider(
        client, bob, settings) -> None:
    client.force_login(bob)
    page = client.get("/wallet/").content.decode()
    assert "Test payment provider (demo only)" in page
    settings.PAYMENTS_PROVIDER = ""
    page = client.get("/wallet/").content.decode()
    assert "Test payment provider" not in page
    assert "Decline" not in page


# --- buying on the web --------------------------------------------------------------------------


def _form_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, name
    return match.group(1)


@pytest.fixture
def on_sale(rita, bob, make_work, fund, device_of):
    work = make_work(rita, title="Harbour at dawn", price_minor=1250)
    fund(bob, 5000)
    _keys, device = device_of(bob, "Bob's laptop")
    return work, device


@pytest.mark.django_db
def test_a_buyer_buys_on_the_web_once_even_if_the_form_is_sent_twice(client, bob,
                                                                     on_sale) -> None:
    work, device = on_sale
    client.force_login(bob)
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert "Buy for €12.50" in page
    form = {"once": _form_value(page, "once"), "device": device.device_id,
            "expected_price_minor": "1250", "expected_currency": "EUR"}
    for _ in range(2):
        assert client.post(f"/works/{work.pk}/buy/", form).status_code == 302
    assert Purchase.objects.filter(buyer=bob).count() == 1
    licence = Licence.objects.get(buyer=bob)
    assert licence.device_id == device.device_id
    wallet = bob.ledger_accounts.get(kind=AccountKind.WALLET, currency="EUR", reference="")
    assert wallet.balance == 5000 - 1250
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert f"peermark-agent get {work.pk}" in page
    assert "You hold a licence" in page
    library = client.get("/purchases/").content.decode()
    assert "Harbour at dawn" in library
    assert "Bob&#x27;s laptop" in library


@pytest.mark.django_db
def test_a_changed_price_is_refused_not_charged(client, bob, on_sale) -> None:
    work, device = on_sale
    client.force_login(bob)
    page = client.get(f"/works/{work.pk}/").content.decode()
    Work.objects.filter(pk=work.pk).update(price_minor=2500)
    response = client.post(f"/works/{work.pk}/buy/", {
        "once": _form_value(page, "once"), "device": device.device_id,
        "expected_price_minor": "1250", "expected_currency": "EUR"}, follow=True)
    assert "The price is now €25.00" in response.content.decode()
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_a_buyer_cannot_buy_for_another_members_device(client, bob, carol, on_sale,
                                                       device_of) -> None:
    work, _device = on_sale
    _keys, theirs = device_of(carol, "Carol's phone")
    client.force_login(bob)
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert "Carol&#x27;s phone" not in page
    response = client.post(f"/works/{work.pk}/buy/", {
        "once": _form_value(page, "once"), "device": theirs.device_id,
        "expected_price_minor": "1250", "expected_currency": "EUR"}, follow=True)
    assert "Select a valid choice" in response.content.decode()
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_an_empty_wallet_says_so_and_buys_nothing(client, rita, carol, make_work,
                                                  device_of) -> None:
    work = make_work(rita, price_minor=1250)
    _keys, device = device_of(carol)
    client.force_login(carol)
    page = client.get(f"/works/{work.pk}/").content.decode()
    response = client.post(f"/works/{work.pk}/buy/", {
        "once": _form_value(page, "once"), "device": device.device_id,
        "expected_price_minor": "1250", "expected_currency": "EUR"}, follow=True)
    assert response.status_code == 200
    assert "flash error" in response.content.decode()
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_without_a_device_the_page_says_to_set_up_the_agent(client, rita, carol,
                                                            make_work) -> None:
    work = make_work(rita)
    client.force_login(carol)
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert "set up the agent first" in page
    assert "Buy for" not in page


@pytest.mark.django_db
def test_an_anonymous_visitor_is_asked_to_log_in_and_cannot_post(client, rita,
                                                                 make_work) -> None:
    work = make_work(rita)
    assert "Log in to buy" in client.get(f"/works/{work.pk}/").content.decode()
    response = client.post(f"/works/{work.pk}/buy/", {})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_member_revokes_only_their_own_device(client, bob, carol, device_of) -> None:
    _keys, mine = device_of(bob, "old laptop")
    _keys, theirs = device_of(carol, "Carol's phone")
    client.force_login(bob)
    assert client.post(f"/devices/{theirs.device_id}/revoke/").status_code == 404
    assert Device.objects.get(pk=theirs.pk).revoked_at is None
    assert client.post(f"/devices/{mine.device_id}/revoke/").status_code == 302
    assert Device.objects.get(pk=mine.pk).revoked_at is not None
    assert client.get(f"/devices/{mine.device_id}/revoke/").status_code == 405


def test_korean_is_an_available_language() -> None:
    from django.conf import settings

    assert ("ko", "한국어") in settings.LANGUAGES
    with translation.override("ko"):
        assert translation.get_language() == "ko"
