"""One library on every device: re-issuing a licence to another of the buyer's devices,
moving a slot, and the library listing, over the API and from the attacker's side."""

from __future__ import annotations

import datetime as dt
import io
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from exchange.audit.models import AuditEvent
from exchange.community.models import Notification
from exchange.licensing.models import Licence, RevocationList
from exchange.licensing.services import device_revoke
from exchange.purchases.services import purchase_create
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence
from licensing.core.revocation import read_revocation_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(rita, bob, make_work, fund, device_of) -> dict[str, Any]:
    """Bob bought Rita's work on his laptop; he also has a desktop and a tablet."""
    work = make_work(rita, price_minor=1000)
    fund(bob, 5000)
    laptop_keys, laptop = device_of(bob, "laptop")
    desktop_keys, desktop = device_of(bob, "desktop")
    tablet_keys, tablet = device_of(bob, "tablet")
    purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id)
    return {"work": work, "purchase": purchase, "licence": purchase.licence,
            "laptop": (laptop_keys, laptop), "desktop": (desktop_keys, desktop),
            "tablet": (tablet_keys, tablet)}


def _reissue(client: Any, licence: Any, device: Any, key: str = "re-1") -> Any:
    return client.post(f"/api/v1/licences/{licence.pk}/devices/",
                       {"device": device.device_id}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


def _move(client: Any, licence: Any, device: Any, key: str = "mv-1") -> Any:
    return client.post(f"/api/v1/licences/{licence.pk}/move/",
                       {"to_device": device.device_id}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


def _ring() -> KeyRing:
    return KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)


class TestReissue:
    def test_a_second_device_gets_a_licence_of_its_own(self, owned, bob, api,
                                                       django_capture_on_commit_callbacks
                                                       ) -> None:
        desktop_keys, desktop = owned["desktop"]
        laptop_keys, _laptop = owned["laptop"]
        with django_capture_on_commit_callbacks(execute=True):
            response = _reissue(api(bob), owned["licence"], desktop)
        assert response.status_code == 201, response.json()
        body = response.json()
        first = owned["licence"]
        assert body["device"] == desktop.device_id
        assert body["origin"] == str(first.pk)
        assert body["purchase"] == str(owned["purchase"].pk)  # the purchase that paid
        assert body["id"] != str(first.pk)
        new = Licence.objects.get(pk=body["id"])
        assert (new.buyer, new.work, new.origin) == (bob, owned["work"], first)
        assert new.watermark_payload != first.watermark_payload
        assert new.expires_at == first.expires_at  # another device extends nothing
        assert new.byte_allowance == first.byte_allowance
        assert new.uses == first.uses
        # New wrapped keys: only the desktop unwraps them, to the work's same keys.
        ring = _ring()
        token = read_licence(body["token"], keyring=ring, now=int(time.time()),
                             device_id=desktop.device_id)
        original = read_licence(first.token, keyring=ring, now=int(time.time()))
        assert token.watermark_payload == new.watermark_payload
        assert (token.unwrap_keys(desktop_keys).content_key
                == original.unwrap_keys(laptop_keys).content_key)
        with pytest.raises(Exception):  # noqa: B017, PT011  (any failure to unwrap)
            token.unwrap_keys(laptop_keys)
        assert AuditEvent.objects.filter(action="licence.reissue").count() == 1
        note = Notification.objects.get(recipient=bob, kind="device")
        assert "desktop" in note.title

    def test_replaying_the_request_issues_once(self, owned, bob, api) -> None:
        client = api(bob)
        first = _reissue(client, owned["licence"], owned["desktop"][1])
        again = _reissue(client, owned["licence"], owned["desktop"][1])
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert Licence.objects.filter(device=owned["desktop"][1]).count() == 1

    def test_the_same_key_for_another_device_is_refused(self, owned, bob, api) -> None:
        client = api(bob)
        _reissue(client, owned["licence"], owned["desktop"][1])
        other = _reissue(client, owned["licence"], owned["tablet"][1])
        assert other.status_code == 422
        assert not Licence.objects.filter(device=owned["tablet"][1]).exists()

    def test_the_same_device_twice_returns_its_licence(self, owned, bob, api) -> None:
        client = api(bob)
        made = _reissue(client, owned["licence"], owned["desktop"][1], key="a").json()
        again = _reissue(client, owned["licence"], owned["desktop"][1], key="b")
        assert again.status_code == 200
        assert again.json()["id"] == made["id"]
        own = _reissue(client, owned["licence"], owned["laptop"][1], key="c")
        assert own.status_code == 200
        assert own.json()["id"] == str(owned["licence"].pk)
        assert Licence.objects.count() == 2

    def test_a_reissue_of_a_reissue_names_the_purchased_licence(self, owned, bob,
                                                                api) -> None:
        client = api(bob)
        second = _reissue(client, owned["licence"], owned["desktop"][1], key="a").json()
        third = client.post(f"/api/v1/licences/{second['id']}/devices/",
                            {"device": owned["tablet"][1].device_id}, format="json",
                            HTTP_IDEMPOTENCY_KEY="b")
        assert third.status_code == 201
        assert third.json()["origin"] == str(owned["licence"].pk)

    def test_it_needs_an_idempotency_key(self, owned, bob, api) -> None:
        response = api(bob).post(f"/api/v1/licences/{owned['licence'].pk}/devices/",
                                 {"device": owned["desktop"][1].device_id}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "idempotency_key_required"
        assert Licence.objects.count() == 1


class TestReissueRefusals:
    def test_another_members_licence_is_not_found(self, owned, carol, api,
                                                  device_of) -> None:
        _keys, carols = device_of(carol)
        response = _reissue(api(carol), owned["licence"], carols)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        missing = api(carol).post("/api/v1/licences/00000000-0000-0000-0000-000000000000"
                                  "/devices/", {"device": carols.device_id}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="x")
        assert missing.status_code == 404
        assert missing.json() == response.json()  # the same answer as a missing one
        assert Licence.objects.count() == 1

    def test_another_members_device_is_refused(self, owned, bob, carol, api,
                                               device_of) -> None:
        _keys, carols = device_of(carol)
        response = _reissue(api(bob), owned["licence"], carols)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "unknown_device"
        assert "device" in error["fields"]
        assert not Licence.objects.filter(device=carols).exists()

    def test_a_revoked_device_is_refused(self, owned, bob, api) -> None:
        device_revoke(device=owned["desktop"][1], actor=bob)
        response = _reissue(api(bob), owned["licence"], owned["desktop"][1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "device_revoked"
        assert Licence.objects.count() == 1

    def test_a_revoked_licence_is_refused(self, owned, bob, api) -> None:
        Licence.objects.filter(pk=owned["licence"].pk).update(revoked_at=timezone.now())
        response = _reissue(api(bob), owned["licence"], owned["desktop"][1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "licence_revoked"
        assert Licence.objects.count() == 1

    def test_an_expired_licence_is_refused(self, owned, bob, api) -> None:
        Licence.objects.filter(pk=owned["licence"].pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1))
        response = _reissue(api(bob), owned["licence"], owned["desktop"][1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "licence_expired"
        assert Licence.objects.count() == 1

    def test_over_the_work_limit_is_refused_and_names_the_limit(self, owned, bob, api,
                                                                 device_of) -> None:
        owned["work"].__class__.objects.filter(pk=owned["work"].pk).update(device_limit=2)
        client = api(bob)
        assert _reissue(client, owned["licence"], owned["desktop"][1], key="a"
                        ).status_code == 201
        response = _reissue(client, owned["licence"], owned["tablet"][1], key="b")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "device_limit"
        assert "at most 2 of your devices" in error["message"]
        assert not Licence.objects.filter(device=owned["tablet"][1]).exists()

    def test_a_revoked_device_frees_its_slot(self, owned, bob, api) -> None:
        owned["work"].__class__.objects.filter(pk=owned["work"].pk).update(device_limit=2)
        client = api(bob)
        _reissue(client, owned["licence"], owned["desktop"][1], key="a")
        device_revoke(device=owned["desktop"][1], actor=bob)
        assert _reissue(client, owned["licence"], owned["tablet"][1], key="b"
                        ).status_code == 201

    @pytest.mark.parametrize("body", [
        {"device": 5}, {"device": None}, {}, {"device": "x" * 10_000}, {"device": ["a"]},
        {"device": "<script>alert(1)</script>"},
    ], ids=["number", "null", "missing", "huge", "list", "script"])
    def test_bad_input_is_a_clear_400_and_stores_nothing(self, owned, bob, api,
                                                         body) -> None:
        response = api(bob).post(f"/api/v1/licences/{owned['licence'].pk}/devices/", body,
                                 format="json", HTTP_IDEMPOTENCY_KEY="bad")
        assert response.status_code == 400
        assert response.json()["error"]["code"] in {"invalid", "unknown_device"}
        assert Licence.objects.count() == 1

    def test_invalid_utf8_is_refused(self, owned, bob, api) -> None:
        response = api(bob).post(f"/api/v1/licences/{owned['licence'].pk}/devices/",
                                 b'{"device": "\xff\xfe"}', content_type="application/json",
                                 HTTP_IDEMPOTENCY_KEY="utf")
        assert response.status_code == 400
        assert Licence.objects.count() == 1

    def test_anonymous_is_401(self, owned, api) -> None:
        response = _reissue(api(None), owned["licence"], owned["desktop"][1])
        assert response.status_code == 401
        assert Licence.objects.count() == 1


class TestMove:
    def test_a_move_revokes_the_old_licence_and_issues_the_new(self, owned, bob, api,
                                                               django_capture_on_commit_callbacks
                                                               ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = _move(api(bob), owned["licence"], owned["tablet"][1])
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["device"] == owned["tablet"][1].device_id
        assert body["origin"] == str(owned["licence"].pk)
        old = Licence.objects.get(pk=owned["licence"].pk)
        assert old.revoked_at is not None
        assert "moved" in old.revocation_reason
        # It is on the next revocation list, as any revoked licence.
        newest = RevocationList.objects.order_by("-version").first()
        assert newest is not None
        listed = read_revocation_list(newest.token, keyring=_ring(), now=int(time.time()))
        assert str(old.pk) in listed.licences
        assert AuditEvent.objects.filter(action="licence.move").count() == 1
        assert Notification.objects.filter(recipient=bob, kind="device").exists()

    def test_a_move_at_the_limit_keeps_the_count(self, owned, bob, api) -> None:
        owned["work"].__class__.objects.filter(pk=owned["work"].pk).update(device_limit=2)
        client = api(bob)
        second = _reissue(client, owned["licence"], owned["desktop"][1], key="a").json()
        moved = client.post(f"/api/v1/licences/{second['id']}/move/",
                            {"to_device": owned["tablet"][1].device_id}, format="json",
                            HTTP_IDEMPOTENCY_KEY="b")
        assert moved.status_code == 201, moved.json()
        live = Licence.objects.filter(revoked_at__isnull=True)
        assert {lic.device_id for lic in live} == {owned["laptop"][1].device_id,
                                                  owned["tablet"][1].device_id}

    def test_a_replayed_move_moves_once(self, owned, bob, api) -> None:
        client = api(bob)
        first = _move(client, owned["licence"], owned["tablet"][1])
        again = _move(client, owned["licence"], owned["tablet"][1])
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert Licence.objects.count() == 2

    def test_moving_a_moved_licence_again_is_refused(self, owned, bob, api) -> None:
        client = api(bob)
        _move(client, owned["licence"], owned["tablet"][1], key="a")
        response = _move(client, owned["licence"], owned["desktop"][1], key="b")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "licence_revoked"
        assert not Licence.objects.filter(device=owned["desktop"][1]).exists()

    def test_moving_to_the_same_device_is_refused(self, owned, bob, api) -> None:
        response = _move(api(bob), owned["licence"], owned["laptop"][1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "same_device"
        assert Licence.objects.get().revoked_at is None

    def test_moving_to_a_device_that_holds_one_frees_the_slot(self, owned, bob, api) -> None:
        client = api(bob)
        there = _reissue(client, owned["licence"], owned["desktop"][1], key="a").json()
        response = _move(client, owned["licence"], owned["desktop"][1], key="b")
        assert response.status_code == 200
        assert response.json()["id"] == there["id"]
        assert Licence.objects.get(pk=owned["licence"].pk).revoked_at is not None
        assert Licence.objects.count() == 2

    def test_another_members_licence_or_device_cannot_be_moved(self, owned, bob, carol, api,
                                                               device_of) -> None:
        _keys, carols = device_of(carol)
        theirs = _move(api(carol), owned["licence"], carols)
        assert theirs.status_code == 404
        to_carol = _move(api(bob), owned["licence"], carols, key="b")
        assert to_carol.status_code == 400
        assert to_carol.json()["error"]["code"] == "unknown_device"
        assert Licence.objects.get().revoked_at is None  # nothing half done

    def test_a_move_to_a_revoked_device_revokes_nothing(self, owned, bob, api) -> None:
        device_revoke(device=owned["tablet"][1], actor=bob)
        response = _move(api(bob), owned["licence"], owned["tablet"][1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "device_revoked"
        assert Licence.objects.get().revoked_at is None

    def test_a_move_from_a_lost_device_over_the_limit_revokes_nothing(self, owned, bob, api,
                                                                      device_of) -> None:
        """The lost laptop was revoked (its slot freed) and two others filled the limit:
        moving the laptop's licence would make three, so nothing happens."""
        owned["work"].__class__.objects.filter(pk=owned["work"].pk).update(device_limit=2)
        client = api(bob)
        _reissue(client, owned["licence"], owned["desktop"][1], key="a")
        device_revoke(device=owned["laptop"][1], actor=bob)
        _reissue(client, owned["licence"], owned["tablet"][1], key="b")
        _keys, phone = device_of(bob, "phone")
        response = _move(client, owned["licence"], phone, key="c")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "device_limit"
        assert Licence.objects.get(pk=owned["licence"].pk).revoked_at is None


class TestLibrary:
    def test_it_lists_each_work_with_its_licences_per_device(self, owned, bob, api) -> None:
        client = api(bob)
        _reissue(client, owned["licence"], owned["desktop"][1], key="a")
        _move(client, owned["licence"], owned["tablet"][1], key="b")
        response = client.get("/api/v1/library/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 1
        entry = body["results"][0]
        assert entry["work"] == str(owned["work"].pk)
        assert entry["device_limit"] == 3
        assert entry["devices_used"] == 2
        by_device = {lic["device_name"]: lic for lic in entry["licences"]}
        assert set(by_device) == {"laptop", "desktop", "tablet"}
        assert by_device["laptop"]["takes_slot"] is False
        assert by_device["laptop"]["revoked_at"] is not None
        assert by_device["desktop"]["takes_slot"] is True
        assert by_device["tablet"]["origin"] == str(owned["licence"].pk)

    def test_another_member_sees_none_of_it(self, owned, carol, api) -> None:
        body = api(carol).get("/api/v1/library/").json()
        assert (body["count"], body["results"]) == (0, [])

    def test_it_needs_a_login(self, api) -> None:
        assert api(None).get("/api/v1/library/").status_code == 401


def test_a_sealed_works_reissue_has_a_table_of_its_own(rita, bob, make_work, fund, device_of,
                                                      api) -> None:
    import hashlib

    from tests.conftest import png_bytes

    work = make_work(rita, price_minor=1000, delivery_mode="sealed",
                     data=png_bytes(512, 512, seed=9))
    assert work.package.sealed
    fund(bob, 5000)
    _keys, laptop = device_of(bob, "laptop")
    _keys, desktop = device_of(bob, "desktop")
    first = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id).licence
    client = api(bob)
    body = _reissue(client, first, desktop).json()
    ring = _ring()
    token = read_licence(body["token"], keyring=ring, now=int(time.time()))
    table = client.get(f"/api/v1/licences/{body['id']}/table/")
    assert table.status_code == 200
    assert token.seal is not None
    assert hashlib.sha256(table.content).digest() == token.seal.table_sha256
    assert table.content != client.get(f"/api/v1/licences/{first.pk}/table/").content


class TestDeviceLimitTerm:
    def test_it_is_three_by_default_and_in_the_public_shape(self, rita, make_work,
                                                           api) -> None:
        work = make_work(rita)
        body = api(None).get(f"/api/v1/works/{work.pk}/").json()
        assert body["terms"]["device_limit"] == 3

    @pytest.mark.parametrize("value", [0, 11, -1, "eleven", 3.0, True, None, 2**70])
    def test_the_owner_cannot_set_it_out_of_range(self, rita, make_work, api,
                                                  value) -> None:
        work = make_work(rita)
        response = api(rita).patch(f"/api/v1/works/{work.pk}/", {"device_limit": value},
                                   format="json")
        assert response.status_code == 400
        assert "device_limit" in response.json()["error"]["fields"]
        work.refresh_from_db()
        assert work.device_limit == 3

    def test_the_owner_sets_it_and_nobody_else_can(self, rita, rob, make_work, api) -> None:
        work = make_work(rita)
        assert api(rob).patch(f"/api/v1/works/{work.pk}/", {"device_limit": 10},
                              format="json").status_code == 403
        response = api(rita).patch(f"/api/v1/works/{work.pk}/", {"device_limit": 1},
                                   format="json")
        assert response.status_code == 200
        assert response.json()["terms"]["device_limit"] == 1

    def test_it_is_set_when_registering(self, rita, api) -> None:
        from tests.conftest import png_bytes

        upload = io.BytesIO(png_bytes(64, 48, seed=3))
        upload.name = "x.png"
        response = api(rita).post("/api/v1/works/", {
            "file": upload, "title": "Five", "price_minor": 300, "currency": "EUR",
            "device_limit": 5}, format="multipart")
        assert response.status_code == 201, response.json()
        assert response.json()["terms"]["device_limit"] == 5


class TestFloods:
    def test_the_eleventh_reissue_or_move_in_an_hour_is_refused(self, owned, bob, api
                                                                  ) -> None:
        """PEERMARK_LIBRARY_RATE, 10 an hour: a re-issue to a device that already holds
        one counts too (each asks the platform to check and sign)."""
        client = api(bob)
        for attempt in range(10):
            response = _reissue(client, owned["licence"], owned["desktop"][1],
                                key=f"flood-{attempt}")
            assert response.status_code in (200, 201), response.json()
        refused = _reissue(client, owned["licence"], owned["tablet"][1], key="flood-10")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused["Retry-After"]) <= 3600
        assert not Licence.objects.filter(device=owned["tablet"][1]).exists()

    def test_the_sixth_move_in_thirty_days_is_refused_and_revokes_nothing(
            self, owned, bob, api, settings) -> None:
        settings.LIBRARY_RATE = "100/hour"
        client = api(bob)
        current = str(owned["licence"].pk)
        devices = [owned["tablet"][1], owned["laptop"][1]]
        for move in range(5):  # laptop -> tablet -> laptop -> ... : five moves
            response = client.post(f"/api/v1/licences/{current}/move/",
                                   {"to_device": devices[move % 2].device_id},
                                   format="json", HTTP_IDEMPOTENCY_KEY=f"mv-{move}")
            assert response.status_code == 201, response.json()
            current = response.json()["id"]
        refused = client.post(f"/api/v1/licences/{current}/move/",
                              {"to_device": owned["laptop"][1].device_id},
                              format="json", HTTP_IDEMPOTENCY_KEY="mv-5")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "too_many_moves"
        assert Licence.objects.get(pk=current).revoked_at is None
        assert Licence.objects.filter(revoked_at__isnull=False).count() == 5
