"""Agents log in once with a password and then use a bearer token."""

from __future__ import annotations

import pytest

from exchange.accounts.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_password_login_returns_a_token_that_works(bob, api) -> None:
    response = api(None).post(
        "/api/v1/auth/tokens/",
        {"username": "bob", "password": PASSWORD, "name": "laptop"},
        format="json",
    )
    assert response.status_code == 201
    raw = response.json()["token"]
    assert raw.startswith("pmk_")
    stored = ApiToken.objects.get(user=bob)
    assert stored.digest != raw
    assert raw not in stored.digest

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").json()["username"] == "bob"


def test_a_wrong_password_gets_no_token(bob, api) -> None:
    response = api(None).post(
        "/api/v1/auth/tokens/", {"username": "bob", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "header",
    ["Bearer pmk_forged0000000000000000000000000000000000", "Bearer nonsense",
     "Bearer pmk_a pmk_b", "Bearer " + "pmk_" + "x" * 300],
    ids=["forged", "no-prefix", "two-tokens", "oversized"],
)
def test_it_refuses_a_forged_or_malformed_token(bob, header) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_token_stops_working(bob, api) -> None:
    client = api(bob)
    token_id = client.get("/api/v1/auth/tokens/").json()[0]["id"]
    assert client.delete(f"/api/v1/auth/tokens/{token_id}/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401


def test_a_user_cannot_revoke_another_users_token(bob, carol, api) -> None:
    carols = api(carol)
    token_id = carols.get("/api/v1/auth/tokens/").json()[0]["id"]
    assert api(bob).delete(f"/api/v1/auth/tokens/{token_id}/").status_code == 404
    assert carols.get("/api/v1/me/").status_code == 200


def test_a_disabled_account_cannot_use_its_token(bob, api) -> None:
    client = api(bob)
    bob.is_active = False
    bob.save()
    assert client.get("/api/v1/me/").status_code == 401
