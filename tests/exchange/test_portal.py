"""The portal, page by page, through Django's test client with real sessions and CSRF."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client

from exchange.accounts.models import Role, User
from exchange.catalogue.models import Work, WorkStatus
from tests.conftest import PASSWORD, png_bytes

pytestmark = pytest.mark.django_db


def _csrf(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert match, "the form has no CSRF token"
    return match.group(1).decode()


def test_a_rights_holder_signs_up_registers_a_work_and_sees_it_listed(
    django_capture_on_commit_callbacks,
) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/signup/", {
        "csrfmiddlewaretoken": _csrf(client, "/signup/"),
        "username": "rosa", "email": "rosa@example.test", "role": "rights_holder",
        "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 302
    assert User.objects.get(username="rosa").role == Role.RIGHTS_HOLDER

    client.post("/logout/", {"csrfmiddlewaretoken": _csrf(client, "/studio/works/")})
    response = client.post("/login/", {
        "csrfmiddlewaretoken": _csrf(client, "/login/"),
        "username": "rosa", "password": PASSWORD,
    })
    assert response.status_code == 302

    upload = io.BytesIO(png_bytes())
    upload.name = "harbour.png"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/studio/works/new/", {
            "csrfmiddlewaretoken": _csrf(client, "/studio/works/new/"),
            "title": "Harbour at dawn", "description": "Early light.", "file": upload,
            "price": "12.50", "currency": "EUR", "allowed_uses": ["view", "download"],
            "licence_days": "365", "byte_allowance_multiple": "2",
        })
    assert response.status_code == 302, response.content.decode()[:2000]

    listing = client.get("/studio/works/").content.decode()
    assert "Harbour at dawn" in listing
    assert "€12.50" in listing
    assert "Ready" in listing
    assert "Harbour at dawn" in client.get("/").content.decode()


def test_a_buyer_signs_up_and_cannot_register_works() -> None:
    client = Client()
    client.post("/signup/", {
        "username": "bea", "email": "bea@example.test", "role": "buyer",
        "password1": PASSWORD, "password2": PASSWORD,
    })
    assert client.get("/studio/works/new/").status_code == 403


def test_signup_cannot_make_an_admin() -> None:
    response = Client().post("/signup/", {
        "username": "mallory", "email": "m@example.test", "role": "admin",
        "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 200  # the form again, with an error
    assert not User.objects.filter(username="mallory").exists()


def test_signup_refuses_a_weak_password() -> None:
    response = Client().post("/signup/", {
        "username": "bea", "email": "bea@example.test", "role": "buyer",
        "password1": "12345", "password2": "12345",
    })
    assert response.status_code == 200
    assert not User.objects.filter(username="bea").exists()


def test_the_register_form_shows_errors_and_stores_nothing(rita, client, settings) -> None:
    client.force_login(rita)
    upload = io.BytesIO(b"not an image")
    upload.name = "fake.png"
    response = client.post("/studio/works/new/", {
        "title": "Fake", "file": upload, "price": "-5", "currency": "EUR",
        "allowed_uses": ["view"], "licence_days": "365", "byte_allowance_multiple": "2",
    })
    assert response.status_code == 400
    assert "Enter an amount in EUR as a number" in response.content.decode()
    assert not Work.objects.exists()

    upload = io.BytesIO(b"not an image")
    upload.name = "fake.png"
    response = client.post("/studio/works/new/", {
        "title": "Fake", "file": upload, "price": "5.00", "currency": "EUR",
        "allowed_uses": ["view"], "licence_days": "365", "byte_allowance_multiple": "2",
    })
    assert response.status_code == 400
    assert "Unsupported file type" in response.content.decode()
    assert not Work.objects.exists()
    assert list(settings.MASTERS_DIR.iterdir()) == []


def test_an_owner_edits_price_and_terms(rita, client, make_work) -> None:
    work = make_work(rita)
    client.force_login(rita)
    response = client.post(f"/studio/works/{work.pk}/edit/", {
        "title": work.title, "description": work.description, "price": "25.00",
        "currency": "USD", "allowed_uses": ["view"], "licence_days": "30",
        "byte_allowance_multiple": "3",
    })
    assert response.status_code == 302
    work.refresh_from_db()
    assert (work.price_minor, work.currency, work.allowed_uses) == (2500, "USD", ["view"])


def test_another_rights_holder_cannot_edit_or_withdraw(rita, rob, client, make_work) -> None:
    work = make_work(rita)
    client.force_login(rob)
    assert client.get(f"/studio/works/{work.pk}/edit/").status_code == 403
    assert client.post(f"/studio/works/{work.pk}/edit/", {"withdraw": "1"}).status_code == 403
    work.refresh_from_db()
    assert work.status == WorkStatus.READY


def test_an_owner_withdraws_a_work(rita, client, make_work) -> None:
    work = make_work(rita)
    client.force_login(rita)
    assert client.post(f"/studio/works/{work.pk}/edit/", {"withdraw": "1"}).status_code == 302
    work.refresh_from_db()
    assert work.status == WorkStatus.WITHDRAWN
    assert "No works found" in client.get("/catalogue/").content.decode()


def test_the_studio_needs_a_login(client) -> None:
    response = client.get("/studio/works/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_catalogue_searches_and_shows_a_work(rita, client, make_work) -> None:
    work = make_work(rita, title="Night market", description="Lanterns")
    make_work(rita, title="Harbour")
    page = client.get("/catalogue/", {"q": "lantern"}).content.decode()
    assert "Night market" in page
    assert "Harbour" not in page
    detail = client.get(f"/works/{work.pk}/").content.decode()
    assert "€12.50" in detail
    assert f"peermark-agent get {work.pk}" in detail
    assert client.get("/works/not-a-uuid/").status_code == 404
