"""One effect per Idempotency-Key, Stripe-strict, also under concurrency."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from exchange.audit.models import AuditEvent
from exchange.catalogue.models import Work
from exchange.core.errors import ServiceError
from exchange.core.idempotency import idempotency_records_purge, idempotent
from exchange.core.models import IdempotencyRecord
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _register(client: Any, key: str | None, title: str = "Harbour") -> Any:
    upload = io.BytesIO(png_bytes())
    upload.name = "harbour.png"
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        "/api/v1/works/",
        {"title": title, "price_minor": 1250, "currency": "EUR", "file": upload},
        format="multipart",
        **headers,
    )


def test_the_same_key_and_body_replays_the_first_response(rita, api) -> None:
    client = api(rita)
    first = _register(client, "k-1")
    second = _register(client, "k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Work.objects.count() == 1
    assert AuditEvent.objects.filter(action="work.register").count() == 1


def test_the_same_key_with_another_body_is_422(rita, api) -> None:
    client = api(rita)
    _register(client, "k-1", title="One")
    response = _register(client, "k-1", title="Two")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Work.objects.count() == 1


def test_keys_belong_to_their_user(rita, rob, api) -> None:
    assert _register(api(rita), "shared").status_code == 201
    assert _register(api(rob), "shared").status_code == 201
    assert Work.objects.count() == 2


def test_a_malformed_key_is_refused(rita, api) -> None:
    response = _register(api(rita), "bad key with spaces")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Work.objects.exists()


def test_a_client_error_is_stored_and_replayed(rita, api) -> None:
    client = api(rita)
    upload = io.BytesIO(b"not an image")
    upload.name = "x.png"
    body = {"title": "x", "price_minor": 5, "currency": "EUR", "file": upload}
    first = client.post("/api/v1/works/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="k-2")
    upload.seek(0)
    again = client.post("/api/v1/works/", body, format="multipart", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == again.status_code == 415
    assert again["Idempotent-Replayed"] == "true"


class _Probe(APIView):
    """A view whose behaviour each test sets, to exercise the decorator alone."""

    behaviour: Any = None

    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        return type(self).behaviour(request)


def _call(user: Any, key: str | None, body: dict[str, Any] | None = None) -> Response:
    factory = APIRequestFactory()
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    request = factory.post("/probe/", body or {"a": 1}, format="json", **headers)
    force_authenticate(request, user=user)
    return _Probe.as_view()(request)


def test_a_missing_key_is_400_where_one_is_required(bob) -> None:
    _Probe.behaviour = staticmethod(lambda request: Response({"ok": True}, status=201))
    response = _call(bob, None)
    assert response.status_code == 400
    assert response.data["error"]["code"] == "idempotency_key_required"


def test_a_server_error_releases_the_key_and_rolls_back(bob) -> None:
    def explode(request: Request) -> Response:
        AuditEvent.objects.create(action="half", target_type="x", target_id="1")
        raise RuntimeError("disk on fire")

    _Probe.behaviour = staticmethod(explode)
    with pytest.raises(RuntimeError):
        _call(bob, "k-3")
    assert not IdempotencyRecord.objects.filter(key="k-3").exists()
    assert not AuditEvent.objects.filter(action="half").exists()

    _Probe.behaviour = staticmethod(lambda request: Response({"ok": True}, status=201))
    assert _call(bob, "k-3").status_code == 201


def test_a_refused_request_rolls_back_its_writes(bob) -> None:
    def refuse(request: Request) -> Response:
        AuditEvent.objects.create(action="half", target_type="x", target_id="1")
        raise ServiceError("Not enough money.", code="insufficient_funds", status_code=402)

    _Probe.behaviour = staticmethod(refuse)
    assert _call(bob, "k-4").status_code == 402
    assert not AuditEvent.objects.filter(action="half").exists()
    assert _call(bob, "k-4").status_code == 402  # replayed, not re-run
    assert IdempotencyRecord.objects.get(key="k-4").state == "done"


def test_a_key_abandoned_by_a_dead_process_can_be_retried(bob) -> None:
    IdempotencyRecord.objects.create(user=bob, key="k-5", fingerprint="x")
    IdempotencyRecord.objects.filter(key="k-5").update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    calls = []
    _Probe.behaviour = staticmethod(lambda request: calls.append(1) or Response({}, status=201))
    # The fingerprint differs, so this is another request: refused, not taken over.
    assert _call(bob, "k-5").status_code == 422
    from exchange.core.idempotency import request_fingerprint

    record = IdempotencyRecord.objects.get(key="k-5")
    factory = APIRequestFactory()
    probe = factory.post("/probe/", {"a": 1}, format="json")
    record.fingerprint = request_fingerprint(Request(probe, parsers=[_json_parser()]))
    record.save()
    assert _call(bob, "k-5").status_code == 201
    assert calls == [1]


def _json_parser() -> Any:
    from rest_framework.parsers import JSONParser

    return JSONParser()


def _probe_fingerprint(body: dict[str, Any] | None = None) -> str:
    from exchange.core.idempotency import request_fingerprint

    probe = APIRequestFactory().post("/probe/", body or {"a": 1}, format="json")
    return request_fingerprint(Request(probe, parsers=[_json_parser()]))


def test_a_claim_nobody_is_working_on_is_taken_over_where_the_database_can_tell(bob) -> None:
    """A claim left in flight by a request that died (a killed worker, a database
    restart): PostgreSQL knows at once, because nobody holds the claim's row lock, so the
    retry runs; SQLite cannot tell a dead request from a slow one, so the retry is 409
    until the claim is stale (the test above)."""
    IdempotencyRecord.objects.create(user=bob, key="k-6", fingerprint=_probe_fingerprint())
    calls = []
    _Probe.behaviour = staticmethod(lambda request: calls.append(1) or Response({}, status=201))
    response = _call(bob, "k-6")
    if connection.vendor == "postgresql":
        assert response.status_code == 201
        assert calls == [1]
        assert _call(bob, "k-6")["Idempotent-Replayed"] == "true"
    else:
        assert response.status_code == 409
        assert response.data["error"]["code"] == "idempotency_in_flight"
        assert calls == []


def test_a_request_whose_claim_was_taken_over_does_nothing(
    bob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request slow to start (its claim committed, its transaction not yet begun) may
    find a retry took its claim over: it answers 409 and leaves the claim to the retry."""
    from exchange.core import idempotency

    real_claim = idempotency._claim

    def claim_then_lose_it(*args: Any) -> Any:
        record = real_claim(*args)
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            created_at=record.created_at + timedelta(seconds=1))  # the retry's takeover
        return record

    monkeypatch.setattr(idempotency, "_claim", claim_then_lose_it)
    calls = []
    _Probe.behaviour = staticmethod(lambda request: calls.append(1) or Response({}, status=201))
    response = _call(bob, "k-7")
    assert response.status_code == 409
    assert calls == []
    assert IdempotencyRecord.objects.get(key="k-7").state == "in_flight"  # the retry's now


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_still_in_flight_is_409(bob) -> None:
    from django.db import connections

    started, finish = threading.Event(), threading.Event()
    answers: list[int] = []

    def slow(request: Request) -> Response:
        started.set()
        assert finish.wait(timeout=30)
        return Response({}, status=201)

    def first() -> None:
        try:
            answers.append(_call(bob, "k-8").status_code)
        finally:
            connections.close_all()

    _Probe.behaviour = staticmethod(slow)
    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(timeout=30)
        response = _call(bob, "k-8")
        assert response.status_code == 409
        assert response.data["error"]["code"] == "idempotency_in_flight"
    finally:
        finish.set()
        thread.join(timeout=30)
    assert answers == [201]
    assert _call(bob, "k-8")["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_an_effect_committed_before_a_failing_hook_keeps_its_stored_response(bob) -> None:
    """The effect committed, then queueing its follow-up failed (the broker is down): the
    client hears 503, and its retry gets the stored response instead of a second effect."""
    from django.db import transaction
    from kombu.exceptions import OperationalError as BrokerError

    def effect_then_broker_down(request: Request) -> Response:
        AuditEvent.objects.create(action="effect", target_type="x", target_id="1")

        def queue() -> None:
            raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        transaction.on_commit(queue)
        return Response({"done": True}, status=201)

    _Probe.behaviour = staticmethod(effect_then_broker_down)
    response = _call(bob, "k-9")
    assert response.status_code == 503
    assert response.data["error"]["code"] == "service_unavailable"
    again = _call(bob, "k-9")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(action="effect").count() == 1


def test_a_database_outage_is_503_and_releases_the_key(bob) -> None:
    from django.db import OperationalError

    def database_down(request: Request) -> Response:
        raise OperationalError("server closed the connection unexpectedly")

    _Probe.behaviour = staticmethod(database_down)
    response = _call(bob, "k-10")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["error"]["code"] == "service_unavailable"
    assert not IdempotencyRecord.objects.filter(key="k-10").exists()
    _Probe.behaviour = staticmethod(lambda request: Response({}, status=201))
    assert _call(bob, "k-10").status_code == 201


def test_old_keys_are_purged_after_the_retention_period(bob) -> None:
    IdempotencyRecord.objects.create(user=bob, key="old", fingerprint="x")
    IdempotencyRecord.objects.create(user=bob, key="new", fingerprint="x")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=49)
    )
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_have_one_effect(rita, api) -> None:
    from django.db import connections

    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            client = api(rita)
            barrier.wait()
            response = _register(client, "same-key")
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert connection.vendor == "postgresql"
    assert Work.objects.count() == 1
    assert len(statuses) == 20
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
