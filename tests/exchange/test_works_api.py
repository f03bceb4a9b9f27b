"""The works API: list, search, detail, register, change terms, withdraw."""

from __future__ import annotations

import io
from typing import Any

import pytest

from exchange.audit.models import AuditEvent
from exchange.catalogue.models import Work, WorkStatus
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _upload(title: str = "Harbour", **fields: Any) -> dict[str, Any]:
    body = fields.pop("data", None) or png_bytes()
    handle = io.BytesIO(body)
    handle.name = "harbour.png"
    return {"title": title, "price_minor": 1250, "currency": "EUR", "file": handle, **fields}


def test_a_rights_holder_registers_a_work_and_it_becomes_ready(
    rita, api, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api(rita).post("/api/v1/works/", _upload(), format="multipart")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "processing"
    assert body["price"] == {"amount_minor": 1250, "currency": "EUR", "display": "€12.50"}
    assert body["terms"]["allowed_uses"] == ["view", "download"]
    work = Work.objects.get(pk=body["id"])
    assert work.status == WorkStatus.READY
    assert len(work.sha256) == 64
    assert work.preview_path
    assert AuditEvent.objects.filter(action="work.register", target_id=str(work.pk)).exists()


def test_the_master_is_stored_under_the_data_folder_not_served(rita, make_work, settings) -> None:
    work = make_work(rita)
    master = settings.MASTERS_DIR / work.master_path
    assert master.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert oct(master.stat().st_mode & 0o777) == "0o600"
    assert "master" not in str(api_paths_of_work(work))


def api_paths_of_work(work: Work) -> list[str]:
    from django.urls import get_resolver

    return [str(p.pattern) for p in get_resolver().url_patterns]


def test_anyone_lists_and_searches_ready_works(rita, make_work, api) -> None:
    make_work(rita, title="Harbour at dawn")
    make_work(rita, title="Night market", description="Lanterns over a street")
    make_work(rita, title="Unfinished", ready=False)

    listed = api(None).get("/api/v1/works/").json()
    assert listed["count"] == 2
    assert {w["title"] for w in listed["results"]} == {"Harbour at dawn", "Night market"}

    found = api(None).get("/api/v1/works/", {"search": "lanterns"}).json()
    assert [w["title"] for w in found["results"]] == ["Night market"]


def test_the_list_filters_and_paginates(rita, make_work, api) -> None:
    for index in range(3):
        make_work(rita, title=f"Work {index}", price_minor=100 * (index + 1))
    make_work(rita, title="In yen", price_minor=500, currency="JPY")

    yen = api(None).get("/api/v1/works/", {"currency": "JPY"}).json()
    assert [w["title"] for w in yen["results"]] == ["In yen"]
    cheap = api(None).get("/api/v1/works/", {"max_price": 200, "currency": "EUR"}).json()
    assert {w["title"] for w in cheap["results"]} == {"Work 0", "Work 1"}
    page = api(None).get("/api/v1/works/", {"page_size": 2, "ordering": "title"}).json()
    assert page["count"] == 4
    assert len(page["results"]) == 2
    assert page["next"]


def test_owners_see_their_own_works_in_any_state(rita, make_work, api) -> None:
    make_work(rita, title="Unfinished", ready=False)
    mine = api(rita).get("/api/v1/works/", {"mine": "true"}).json()
    assert [w["status"] for w in mine["results"]] == ["processing"]


def test_nobody_else_sees_a_work_that_is_not_ready(rita, bob, make_work, api) -> None:
    work = make_work(rita, ready=False)
    assert api(bob).get(f"/api/v1/works/{work.pk}/").status_code == 404
    assert api(None).get(f"/api/v1/works/{work.pk}/").status_code == 404
    assert api(rita).get(f"/api/v1/works/{work.pk}/").status_code == 200


def test_the_detail_shows_owner_fields_to_the_owner_only(rita, bob, make_work, api) -> None:
    work = make_work(rita)
    assert "sha256" in api(rita).get(f"/api/v1/works/{work.pk}/").json()
    public = api(bob).get(f"/api/v1/works/{work.pk}/").json()
    assert "sha256" not in public
    assert "master_path" not in public


def test_an_owner_changes_price_and_terms(rita, make_work, api) -> None:
    work = make_work(rita)
    response = api(rita).patch(
        f"/api/v1/works/{work.pk}/",
        {"price_minor": 2000, "allowed_uses": ["view"], "licence_days": 30},
        format="json",
    )
    assert response.status_code == 200, response.json()
    work.refresh_from_db()
    assert (work.price_minor, work.allowed_uses, work.licence_days) == (2000, ["view"], 30)
    event = AuditEvent.objects.get(action="work.update")
    assert event.data["before"]["price_minor"] == 1250
    assert event.data["after"] == {"price_minor": 2000, "allowed_uses": ["view"],
                                   "licence_days": 30}


def test_a_withdrawn_work_leaves_the_catalogue_and_withdrawing_twice_is_harmless(
    rita, make_work, api
) -> None:
    work = make_work(rita)
    client = api(rita)
    assert client.post(f"/api/v1/works/{work.pk}/withdraw/").json()["status"] == "withdrawn"
    assert client.post(f"/api/v1/works/{work.pk}/withdraw/").status_code == 200
    assert AuditEvent.objects.filter(action="work.withdraw").count() == 1
    assert api(None).get("/api/v1/works/").json()["count"] == 0
    blocked = client.patch(f"/api/v1/works/{work.pk}/", {"price_minor": 5}, format="json")
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] == "work_withdrawn"


def test_the_preview_is_a_small_jpeg(rita, make_work, api) -> None:
    work = make_work(rita, data=png_bytes(1200, 900))
    response = api(None).get(f"/api/v1/works/{work.pk}/preview/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    from PIL import Image

    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as image:
        assert max(image.size) <= 480


def test_me_says_who_i_am(rita, api) -> None:
    body = api(rita).get("/api/v1/me/").json()
    assert body["username"] == "rita"
    assert body["role"] == "rights_holder"
    assert api(None).get("/api/v1/me/").status_code == 401
