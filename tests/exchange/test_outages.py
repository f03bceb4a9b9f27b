"""A backing service that is down (the database, Redis, the broker) is a clear 503 with
the API's error body, or a small page in the portal: never a 500, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from exchange.core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def _down(*_args: Any, **_kwargs: Any) -> Any:
    raise OperationalError("connection to server at \"127.0.0.1\", port 5432 failed")


def test_a_purchase_while_the_database_is_down_is_503_and_can_be_retried(
    bob, api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.purchases import services

    monkeypatch.setattr(services, "purchase_create", _down)
    body = {"work": str(uuid.uuid4()), "device": "a" * 43}
    response = api(bob).post("/api/v1/purchases/", body,
                             format="json", HTTP_IDEMPOTENCY_KEY="buy-1")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "same Idempotency-Key" in response.json()["error"]["message"]
    assert not IdempotencyRecord.objects.filter(key="buy-1").exists()


def test_orders_while_redis_is_down_are_503(carol, api, monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange.metering import services

    def redis_down(**_kwargs: Any) -> Any:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "orders_ingest", redis_down)
    response = api(carol).post("/api/v1/metering/orders/", {"orders": ["x"]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


def test_a_plain_django_view_under_the_api_paths_answers_json(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.licensing import api_views

    monkeypatch.setattr(api_views, "platform_keyring", _down)
    response = Client(raise_request_exception=False).get("/.well-known/jwks.json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


def test_a_portal_page_while_the_database_is_down_is_a_small_503_page(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.portal import views

    monkeypatch.setattr(views, "works_visible_to", _down)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Back in a moment" in response.content
    assert b"Traceback" not in response.content


def test_other_errors_are_still_500(monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange.portal import views

    def bug(*_args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "works_visible_to", bug)
    assert Client(raise_request_exception=False).get("/").status_code == 500


def test_database_connections_are_checked_before_a_request_reuses_them() -> None:
    """A connection kept from before a database restart is replaced, not used and failed."""
    result = subprocess.run(
        [sys.executable, "-c", "import exchange.settings as s; "
         "print(s.DATABASES['default']['CONN_HEALTH_CHECKS'])"],
        env={**os.environ, "DATABASE_URL": "postgres://peermark@db.example:5432/pm"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.stdout.strip() == "True", result.stderr
