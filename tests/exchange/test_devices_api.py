"""Devices, manifests and the revocation list over the API, tried from the attacker's side."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from exchange.licensing.models import Device
from licensing.core.device import DeviceKeys
from licensing.core.encoding import b64url_encode
from licensing.core.keyring import KeyRing
from licensing.core.manifest import read_manifest
from licensing.core.revocation import read_revocation_list
from tests.support.bad_keys import BAD_ED25519, LOW_ORDER_X25519

pytestmark = pytest.mark.django_db


def _register(client, keys: DeviceKeys, name: str = "laptop"):
    public = keys.public.to_b64url()
    return client.post(
        "/api/v1/devices/",
        {"name": name, "signing_key": public["sig"], "kem_key": public["kem"]},
        format="json",
    )


def _ring() -> KeyRing:
    return KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)


def test_a_device_registers_its_public_keys_once(bob, api) -> None:
    keys = DeviceKeys.generate()
    first = _register(api(bob), keys)
    assert first.status_code == 201
    assert first.json()["device_id"] == keys.device_id
    again = _register(api(bob), keys)
    assert again.status_code == 201
    assert again.json()["device_id"] == keys.device_id
    assert Device.objects.count() == 1


def test_keys_registered_by_someone_else_are_refused(bob, carol, api) -> None:
    keys = DeviceKeys.generate()
    _register(api(bob), keys)
    response = _register(api(carol), keys)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "device_taken"
    assert Device.objects.get().user == bob


@pytest.mark.parametrize(
    ("signing", "kem", "field"),
    [("", "x", "signing_key"), ("not base64!!", "AAAA", "signing_key"),
     ("A" * 43, "A" * 10, "kem_key"), ("A" * 64, "A" * 43, "signing_key")],
)
def test_malformed_keys_are_refused(bob, api, signing, kem, field) -> None:
    response = api(bob).post(
        "/api/v1/devices/", {"signing_key": signing, "kem_key": kem}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Device.objects.exists()


def _b64(hex_key: str) -> str:
    return b64url_encode(bytes.fromhex(hex_key))


@pytest.mark.parametrize("kem", LOW_ORDER_X25519)
def test_a_low_order_x25519_key_is_refused_naming_the_field(bob, api, kem) -> None:
    good = DeviceKeys.generate().public.to_b64url()
    response = api(bob).post(
        "/api/v1/devices/", {"signing_key": good["sig"], "kem_key": _b64(kem)}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["kem_key"]
    assert "small order" in error["fields"]["kem_key"][0]
    assert Device.objects.count() == 0


@pytest.mark.parametrize("signing", BAD_ED25519)
def test_an_unusable_ed25519_key_is_refused_naming_the_field(bob, api, signing) -> None:
    good = DeviceKeys.generate().public.to_b64url()
    response = api(bob).post(
        "/api/v1/devices/", {"signing_key": _b64(signing), "kem_key": good["kem"]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["signing_key"]
    assert Device.objects.count() == 0


def test_a_user_lists_and_revokes_only_their_own_devices(bob, carol, api) -> None:
    _register(api(bob), DeviceKeys.generate(), "bob's")
    carols = DeviceKeys.generate()
    _register(api(carol), carols, "carol's")
    assert [d["name"] for d in api(bob).get("/api/v1/devices/").json()] == ["bob's"]
    assert api(bob).post(f"/api/v1/devices/{carols.device_id}/revoke/").status_code == 404
    assert Device.objects.get(pk=carols.device_id).revoked_at is None

    revoked = api(carol).post(f"/api/v1/devices/{carols.device_id}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]


def test_a_revoked_device_is_on_the_next_revocation_list(
    bob, api, django_capture_on_commit_callbacks
) -> None:
    keys = DeviceKeys.generate()
    _register(api(bob), keys)
    first = api(None).get("/api/v1/revocations/").json()
    with django_capture_on_commit_callbacks(execute=True):
        api(bob).post(f"/api/v1/devices/{keys.device_id}/revoke/")
    latest = api(None).get("/api/v1/revocations/").json()
    assert latest["version"] > first["version"]
    listed = read_revocation_list(latest["token"], keyring=_ring(), now=int(time.time()))
    assert listed.is_device_revoked(keys.device_id)
    assert _register(api(bob), keys).status_code == 409  # a revoked device stays revoked


def test_the_manifest_is_signed_and_matches_the_package(rita, bob, make_work, api) -> None:
    work = make_work(rita)
    response = api(bob).get(f"/api/v1/works/{work.pk}/manifest/")
    assert response.status_code == 200
    body = response.json()
    manifest = read_manifest(body["token"], keyring=_ring(), now=int(time.time()))
    assert manifest.root_hex == body["merkle_root"] == work.package.root
    assert manifest.piece_count == body["piece_count"]
    assert api(None).get(f"/api/v1/works/{work.pk}/manifest/").status_code == 401


def test_the_manifest_of_a_hidden_work_is_not_found(rita, bob, make_work, api) -> None:
    work = make_work(rita, ready=False)
    assert api(bob).get(f"/api/v1/works/{work.pk}/manifest/").status_code == 404


def test_another_buyers_licence_is_not_found(
    rita, bob, carol, make_work, fund, device_of, api
) -> None:
    work = make_work(rita)
    fund(bob, 5000)
    _, device = device_of(bob)
    bought = (
        api(bob)
        .post(
            "/api/v1/purchases/",
            {"work": str(work.pk), "device": device.device_id},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k",
        )
        .json()
    )
    licence_id = bought["licence"]["id"]
    assert api(bob).get(f"/api/v1/licences/{licence_id}/").status_code == 200
    assert api(carol).get(f"/api/v1/licences/{licence_id}/").status_code == 404
    assert api(carol).get("/api/v1/licences/").json()["count"] == 0


def test_licences_can_be_listed_for_one_work_and_name_their_purchase(
    rita, bob, carol, make_work, fund, device_of, api
) -> None:
    """What an agent asks to pick up a licence bought on the web."""
    first, second = make_work(rita, title="One"), make_work(rita, title="Two")
    fund(bob, 5000)
    _, device = device_of(bob)
    bought = {}
    for key, work in (("a", first), ("b", second)):
        bought[work.pk] = api(bob).post(
            "/api/v1/purchases/", {"work": str(work.pk), "device": device.device_id},
            format="json", HTTP_IDEMPOTENCY_KEY=key).json()
    listed = api(bob).get("/api/v1/licences/", {"work": str(second.pk)}).json()["results"]
    assert [licence["id"] for licence in listed] == [bought[second.pk]["licence"]["id"]]
    assert listed[0]["purchase"] == bought[second.pk]["purchase"]["id"]
    assert api(carol).get("/api/v1/licences/", {"work": str(second.pk)}).json()["count"] == 0
    response = api(bob).get("/api/v1/licences/", {"work": "not-a-uuid"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"work": ["work is a work's id (a UUID)."]}
