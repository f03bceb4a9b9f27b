"""Stripe-strict idempotency for every POST that changes state.

Same key and same body: the stored response is replayed (``Idempotent-Replayed: true``).
Same key, other body: 422. Same key while the first request is still running: 409.
The claim is a row under a unique constraint, committed before the work starts, so two
concurrent requests with one key cannot both run, on SQLite or PostgreSQL.

A request that fails with a 5xx releases its key, so the client may retry it; a 4xx is
stored like a success, because the same request would fail the same way again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api.errors import error_body
from exchange.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request that has been "in flight" this long died without releasing its key.
STALE_AFTER = timedelta(minutes=5)

View = TypeVar("View", bound=Callable[..., Response])


def request_fingerprint(request: Request) -> str:
    """Hash of what the request asks for: method, path, query, fields and file contents."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}?{request.META.get('QUERY_STRING', '')}".encode())
    data: Any = request.data
    if hasattr(data, "lists"):  # a QueryDict from a form or multipart body
        items = sorted((key, sorted(str(v) for v in values)) for key, values in data.lists())
        digest.update(json.dumps(items).encode())
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            digest.update(f"|file:{name}:{upload.size}:".encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _claim(request: Request, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                user=request.user, key=key, fingerprint=fingerprint
            )
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
    if existing is None:  # released between our insert and this read: the client may retry
        return Response(
            error_body("idempotency_in_flight", "A request with this key just finished; retry."),
            status=409,
        )
    if existing.fingerprint != fingerprint:
        return Response(
            error_body(
                "idempotency_key_reused",
                f"This {HEADER} was used for a different request.",
                {HEADER: ["Use a new key for a different request."]},
            ),
            status=422,
        )
    if existing.state == IdempotencyRecord.State.DONE:
        return _replay(existing)
    if timezone.now() - existing.created_at > STALE_AFTER:
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at=existing.created_at
        ).update(created_at=timezone.now())
        if taken:
            existing.refresh_from_db()
            return existing
    return Response(
        error_body("idempotency_in_flight", "A request with this key is still being processed."),
        status=409,
    )


def idempotent(*, required: bool) -> Callable[[View], View]:
    """Decorate a DRF view method (``post``) so that its effect happens once per key."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    return Response(
                        error_body(
                            "idempotency_key_required",
                            f"This request needs an {HEADER} header (a unique string per request).",
                            {HEADER: ["This header is required."]},
                        ),
                        status=400,
                    )
                return view(self, request, *args, **kwargs)
            if not _KEY_RE.match(key):
                return Response(
                    error_body(
                        "invalid",
                        f"{HEADER} must be 1 to 255 printable ASCII characters.",
                        {HEADER: ["Malformed key."]},
                    ),
                    status=400,
                )
            if not request.user.is_authenticated:
                return view(self, request, *args, **kwargs)  # the view's permission check answers
            claimed = _claim(request, key, request_fingerprint(request))
            if isinstance(claimed, Response):
                return claimed
            try:
                response = view(self, request, *args, **kwargs)
            except Exception as exc:
                from rest_framework.exceptions import APIException

                from exchange.api.errors import ServiceError

                if isinstance(exc, ServiceError | APIException) or _is_client_error(exc):
                    handled = self.handle_exception(exc)
                    _store(claimed, handled)
                    return handled
                claimed.delete()
                raise
            if response.status_code >= 500:
                claimed.delete()
            else:
                _store(claimed, response)
            return response

        return wrapper  # type: ignore[return-value]

    return decorate


def _is_client_error(exc: Exception) -> bool:
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.http import Http404

    return isinstance(exc, ValidationError | PermissionDenied | Http404)


def _store(record: IdempotencyRecord, response: Response) -> None:
    record.state = IdempotencyRecord.State.DONE
    record.status_code = response.status_code
    record.response_body = response.data
    record.save(update_fields=["state", "status_code", "response_body"])


def idempotency_records_purge(*, now: Any = None) -> int:
    """Forget keys older than the retention period (at least 24 hours)."""
    now = now or timezone.now()
    hours = max(24, getattr(settings, "IDEMPOTENCY_RETENTION_HOURS", 48))
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - timedelta(hours=hours)).delete()
    return deleted
