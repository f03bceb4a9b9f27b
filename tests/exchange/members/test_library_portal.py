"""The library page: each work's licences per device, adding a device and moving a
licence, once per form, in English and Korean; the device limit in the studio's forms."""

from __future__ import annotations

import re
from typing import Any

import pytest

from exchange.catalogue.models import Work
from exchange.licensing.models import Licence
from exchange.purchases.services import purchase_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(rita, bob, make_work, fund, device_of) -> dict[str, Any]:
    work = make_work(rita, title="Harbour at dawn", price_minor=1000)
    fund(bob, 5000)
    _keys, laptop = device_of(bob, "laptop")
    _keys, desktop = device_of(bob, "desktop")
    purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id)
    return {"work": work, "licence": purchase.licence, "laptop": laptop, "desktop": desktop}


def _once(page: str, action: str) -> str:
    form = re.search(rf'action="{re.escape(action)}".*?name="once" value="([^"]+)"', page,
                     re.S)
    assert form is not None, f"no form for {action}"
    return form.group(1)


def test_the_page_lists_the_work_with_its_devices(owned, bob, client) -> None:
    client.force_login(bob)
    page = client.get("/purchases/").content.decode()
    assert "On your devices" in page
    assert "1 of 3 devices" in page
    assert f'/licences/{owned["licence"].pk}/devices/' in page  # "Add this device"
    assert f'/licences/{owned["licence"].pk}/move/' in page


def test_adding_a_device_issues_a_licence_once(owned, bob, client) -> None:
    client.force_login(bob)
    action = f'/licences/{owned["licence"].pk}/devices/'
    once = _once(client.get("/purchases/").content.decode(), action)
    body = {"once": once, "device": owned["desktop"].device_id}
    assert client.post(action, body).status_code == 302
    assert client.post(action, body).status_code == 302  # a double click
    assert Licence.objects.filter(device=owned["desktop"]).count() == 1
    page = client.get("/purchases/").content.decode()
    assert "2 of 3 devices" in page


def test_moving_revokes_the_old_licence(owned, bob, client) -> None:
    client.force_login(bob)
    action = f'/licences/{owned["licence"].pk}/move/'
    once = _once(client.get("/purchases/").content.decode(), action)
    response = client.post(action, {"once": once, "device": owned["desktop"].device_id},
                           follow=True)
    assert "Moved to" in response.content.decode()
    assert Licence.objects.get(pk=owned["licence"].pk).revoked_at is not None
    assert Licence.objects.filter(device=owned["desktop"], revoked_at__isnull=True).exists()


def test_a_refusal_is_shown_and_nothing_is_stored(owned, bob, client) -> None:
    Work.objects.filter(pk=owned["work"].pk).update(device_limit=1)
    client.force_login(bob)
    page = client.get("/purchases/").content.decode()
    assert "All of this work's device places are taken" in page
    response = client.post(f'/licences/{owned["licence"].pk}/devices/',
                           {"once": "k1", "device": owned["desktop"].device_id}, follow=True)
    assert "at most 1 of your devices" in response.content.decode()
    assert Licence.objects.count() == 1


def test_another_member_cannot_touch_the_licence(owned, carol, device_of, client) -> None:
    _keys, carols = device_of(carol)
    client.force_login(carol)
    for path in ("devices", "move"):
        response = client.post(f'/licences/{owned["licence"].pk}/{path}/',
                               {"once": f"k-{path}", "device": carols.device_id})
        assert response.status_code == 404
    assert Licence.objects.count() == 1
    assert Licence.objects.get().revoked_at is None


def test_a_get_or_an_anonymous_post_changes_nothing(owned, client) -> None:
    action = f'/licences/{owned["licence"].pk}/devices/'
    assert client.post(action, {"once": "x", "device": "y"}).status_code == 302  # to login
    assert Licence.objects.count() == 1


def test_the_page_renders_in_korean(owned, bob, client) -> None:
    client.force_login(bob)
    client.cookies["django_language"] = "ko"
    response = client.get("/purchases/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'lang="ko"' in page
    assert "내 기기에서" in page  # "On your devices", the section's heading


def test_the_studio_sets_the_device_limit(rita, client, make_work) -> None:
    work = make_work(rita)
    client.force_login(rita)
    edit = f"/studio/works/{work.pk}/edit/"
    assert 'name="device_limit"' in client.get(edit).content.decode()
    fields = {"title": work.title, "description": work.description, "price": "12.50",
              "currency": "EUR", "allowed_uses": ["view"], "licence_days": "30",
              "byte_allowance_multiple": "3"}
    assert client.post(edit, {**fields, "device_limit": "11"}).status_code == 400
    assert client.post(edit, {**fields, "device_limit": "5"}).status_code == 302
    work.refresh_from_db()
    assert work.device_limit == 5
    client.post(edit, fields)  # an older form without the field keeps it
    work.refresh_from_db()
    assert work.device_limit == 5
    page = client.get(f"/works/{work.pk}/").content.decode()
    assert "Up to 5 devices at once" in page
