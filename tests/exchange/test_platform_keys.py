"""The platform's signing keys: stored wrapped, published as JWKS, rotated in order."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from exchange.licensing.keys import (
    key_activate,
    key_encryption_key,
    key_publish,
    key_retire,
    keyring_clear_cache,
    platform_keyring,
)
from exchange.licensing.models import PlatformKey
from licensing.core.errors import KeyStateError, LicensingError, RetiredKeyError
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence

pytestmark = pytest.mark.django_db


def _published_ring() -> KeyRing:
    return KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)


def test_the_first_key_is_made_on_first_use_and_published() -> None:
    assert not PlatformKey.objects.exists()
    ring = platform_keyring()
    row = PlatformKey.objects.get()
    assert row.state == "active"
    assert ring.active is not None
    assert ring.active.kid == row.kid
    response = Client().get("/.well-known/jwks.json")
    assert response["Cache-Control"] == "public, max-age=300"
    assert [k["kid"] for k in response.json()["keys"]] == [row.kid]
    assert "d" not in response.json()["keys"][0]  # no private part


def test_private_keys_are_stored_wrapped_never_in_clear() -> None:
    platform_keyring()
    row = PlatformKey.objects.get()
    private = platform_keyring().active.private_bytes()  # type: ignore[union-attr]
    assert private not in bytes(row.private_wrapped)
    assert len(bytes(row.private_wrapped)) > len(private)


def test_a_wrong_key_encryption_key_cannot_load_the_ring(monkeypatch) -> None:
    import base64

    platform_keyring()
    keyring_clear_cache()
    monkeypatch.setenv("PEERMARK_KEY_ENCRYPTION_KEY", base64.b64encode(b"x" * 32).decode())
    with pytest.raises(LicensingError):
        platform_keyring()


def test_a_malformed_key_encryption_key_is_a_configuration_error(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("PEERMARK_KEY_ENCRYPTION_KEY", "short")
    with pytest.raises(ImproperlyConfigured):
        key_encryption_key()


def test_a_rotation_keeps_old_tokens_valid_until_the_old_key_is_retired(
    rita, bob, make_work, fund, device_of, api
) -> None:
    work = make_work(rita)
    fund(bob, 10_000)
    _, device = device_of(bob)

    def buy(key: str) -> str:
        response = api(bob).post(
            "/api/v1/purchases/",
            {"work": str(work.pk), "device": device.device_id},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        assert response.status_code == 201, response.json()
        return str(response.json()["licence"]["token"])

    old_token = buy("before")
    old = PlatformKey.objects.get()
    new = key_publish()
    assert new.state == "verify-only"
    assert {k["kid"] for k in _published_ring().to_jwks()["keys"]} == {old.kid, new.kid}

    with pytest.raises(KeyStateError, match="published less than"):
        key_activate(kid=new.kid)  # agents' JWKS caches may not know it yet
    key_activate(kid=new.kid, now=timezone.now() + dt.timedelta(seconds=301))
    new_token = buy("after")
    now = int(time.time())
    assert read_licence(old_token, keyring=_published_ring(), now=now).kid == old.kid
    assert read_licence(new_token, keyring=_published_ring(), now=now).kid == new.kid

    with pytest.raises(KeyStateError, match="tokens alive until"):
        key_retire(kid=old.kid)  # the licence it signed lives 365 days
    far = timezone.now() + dt.timedelta(days=366)
    key_retire(kid=old.kid, now=far)
    assert [k["kid"] for k in _published_ring().to_jwks()["keys"]] == [new.kid]
    ring_with_retired = platform_keyring()
    with pytest.raises(RetiredKeyError):
        read_licence(old_token, keyring=ring_with_retired, now=now)
    from licensing.core.errors import UnknownKeyError

    with pytest.raises(UnknownKeyError):
        read_licence(old_token, keyring=_published_ring(), now=now)


def test_the_active_key_cannot_be_retired() -> None:
    platform_keyring()
    with pytest.raises(KeyStateError, match="activate another key"):
        key_retire(kid=PlatformKey.objects.get().kid)


def test_the_rotation_command_walks_through_the_steps(capsys) -> None:
    platform_keyring()
    call_command("signing_keys", "publish")
    new = PlatformKey.objects.get(state="verify-only")
    with pytest.raises(CommandError, match="published less than"):
        call_command("signing_keys", "activate", new.kid[:10])
    call_command("signing_keys", "activate", new.kid[:10], "--force")
    assert PlatformKey.objects.get(state="active").kid == new.kid
    call_command("signing_keys", "list")
    out = capsys.readouterr().out
    assert new.kid in out
    assert "verify-only" in out
    with pytest.raises(CommandError, match="matches 0 keys"):
        call_command("signing_keys", "retire", "nope")
