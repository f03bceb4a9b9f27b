"""Stripe-strict idempotency for every POST that changes state: the API's and the portal's.

Same key and same body: the stored response is replayed (``Idempotent-Replayed: true``).
Same key, other body: 422. Same key while the first request is still running: 409.
The claim is a row under a unique constraint, committed before the work starts, so two
concurrent requests with one key cannot both run, on SQLite or PostgreSQL; the effect and
the stored response then commit in one transaction.

A request that fails with a 5xx releases its key, so the client may retry it; a 4xx is
stored like a success, because the same request would fail the same way again.

A request whose process dies (a killed worker, a database restart) cannot release its
key. On PostgreSQL the running request holds a row lock on its claim for as long as its
transaction is open, and a dead one's transaction is rolled back by the server, so a
retry that finds the claim unlocked takes it over at once (``SKIP LOCKED``); the request
itself checks, under that lock, that its claim is still its own before it does
anything. Where there are no row locks (SQLite) a claim is taken over once it is
``STALE_AFTER`` old. Once the effect has committed the key is never released, even if
something after the commit fails: the retry gets the stored response.

Portal forms that move money use the same table (`run_once`): each form carries a fresh
random key, and the POST claims it in the transaction of the action itself, so a double
click, a reload or a back-and-resubmit performs the action once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from contextlib import nullcontext, suppress
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.core.errors import ServiceError, error_body
from exchange.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request that has been "in flight" this long died without releasing its key.
STALE_AFTER = timedelta(minutes=5)

# A user is an `AbstractBaseUser` here, and rows name it by `user_id`: the user model
# belongs to an app, which this bottom package may not import (pyproject.toml's import
# contracts), and the type checker knows the foreign key only as that model.
View = TypeVar("View", bound=Callable[..., Response])
T = TypeVar("T")


def request_fingerprint(request: Request) -> str:
    """Hash of what the request asks for: method, path, query, fields and file contents."""
    digest = hashlib.sha256()
    digest.update(
        f"{request.method} {request.path}?{request.META.get('QUERY_STRING', '')}".encode()
    )
    data = request.data
    if isinstance(data, MultiValueDict):  # a QueryDict from a form or multipart body
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


def _in_flight() -> Response:
    return Response(
        error_body("idempotency_in_flight", "A request with this key is still being processed."),
        status=409,
    )


def _claim(user: AbstractBaseUser, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Insert the key under its unique constraint, or answer from the row already there.

    Outside a transaction (a request) the INSERT commits on its own, in one round trip;
    inside one (a test's), a savepoint keeps a duplicate key from breaking it.
    """
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            return IdempotencyRecord.objects.create(user_id=user.pk, key=key,
                                                    fingerprint=fingerprint)
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(user_id=user.pk, key=key).first()
    if existing is None:  # released (a 5xx) between our insert and this read
        return _in_flight()
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
    # A claim whose request died. Its effect cannot have committed (effect and stored
    # response commit together, below), so it is safe to take the key over, once: the
    # compare-and-swap on created_at admits one taker, and the request that made the
    # claim, if it is alive after all, finds it is no longer its own (``_hold``).
    if _abandoned(existing):
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at=existing.created_at
        ).update(created_at=timezone.now())
        if taken:
            existing.refresh_from_db()
            return existing
    return _in_flight()


def _abandoned(record: IdempotencyRecord) -> bool:
    """Is this in-flight claim's request dead? On PostgreSQL: nobody holds its row lock
    (a live request holds it from the start of its transaction to the end). Elsewhere:
    it is older than ``STALE_AFTER``."""
    if not connection.features.has_select_for_update_skip_locked:
        return timezone.now() - record.created_at > STALE_AFTER
    with transaction.atomic():
        return bool(list(IdempotencyRecord.objects.select_for_update(skip_locked=True).filter(
            pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT).values_list("pk", flat=True)))


def _mine(record: IdempotencyRecord) -> QuerySet[IdempotencyRecord]:
    """This request's claim, as long as nobody took it over."""
    return IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at,
                                            state=IdempotencyRecord.State.IN_FLIGHT)


def _hold(record: IdempotencyRecord) -> bool:
    """Lock this request's claim for the rest of its transaction; False if it was taken
    over (this request then does nothing)."""
    return bool(list(_mine(record).select_for_update().values_list("pk", flat=True)))


class _Lost(Exception):  # noqa: N818  (control flow, not an error)
    """The claim was taken over by a retry that found it abandoned."""


class _Abort(Exception):  # noqa: N818  (control flow, not an error)
    """Roll the request's writes back but keep its (non-2xx) response."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _error_key_response(code: str, message: str, status: int) -> Response:
    return Response(error_body(code, message, {HEADER: [message]}), status=status)


def key_parameter(*, required: bool) -> OpenApiParameter:
    """The ``Idempotency-Key`` header, as the OpenAPI schema shows it."""
    return OpenApiParameter(
        HEADER, str, OpenApiParameter.HEADER, required=required, pattern=_KEY_RE.pattern,
        description="1 to 255 printable ASCII characters, unique per request (a UUID is "
                    "ideal). The same key and body again replay the stored response.",
    )


def idempotent(*, required: bool) -> Callable[[View], View]:
    """Decorate a DRF view method (``post``) so that its effect happens once per key.

    The view runs inside one durable transaction together with the write of its stored
    response: either both commit or neither does, so a crash between them cannot leave an
    effect without a record (which a retry would repeat). Services called from here open
    nested ``atomic()`` blocks, which become savepoints of this one.

    The OpenAPI schema shows the header (and ``exchange.core.openapi`` the statuses that
    come with it: 400, 409, 422).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(self: APIView, request: Request, *args: object, **kwargs: object) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    return _error_key_response(
                        "idempotency_key_required",
                        f"This request needs an {HEADER} header (a unique string per request).",
                        400,
                    )
                return view(self, request, *args, **kwargs)
            if not _KEY_RE.match(key):
                return _error_key_response(
                    "invalid", f"{HEADER} must be 1 to 255 printable ASCII characters.", 400
                )
            user = request.user
            if not isinstance(user, get_user_model()):
                return view(self, request, *args, **kwargs)  # the view's permission check answers
            claimed = _claim(user, key, request_fingerprint(request))
            if isinstance(claimed, Response):
                return claimed
            stored = False
            try:
                with transaction.atomic(durable=True):
                    if not _hold(claimed):
                        raise _Lost
                    response = view(self, request, *args, **kwargs)
                    if response.status_code >= 300:
                        raise _Abort(response)
                    _store(claimed, response)
                    stored = True
                return response
            except _Lost:
                return _in_flight()
            except _Abort as abort:
                response = abort.response
            except (ServiceError, APIException, ValidationError, PermissionDenied, Http404) as exc:
                response = self.handle_exception(exc)
            except BaseException:
                # A failure after the response was stored came from the commit or from
                # a hook after it (queueing follow-up work with the broker down): the
                # effect may be in, so the claim stays. A retry replays the stored
                # response if it committed, and takes the claim over if it did not.
                if not stored:
                    _release(claimed)
                raise
            if response.status_code >= 500:
                _release(claimed)  # not the client's fault: let them retry with the same key
            else:
                _store(claimed, response)  # the same request would fail the same way again
            return response

        document = extend_schema(parameters=[key_parameter(required=required)])
        return document(wrapper)  # type: ignore[return-value]

    return decorate


def _store(record: IdempotencyRecord, response: Response) -> None:
    """Keep the response for replays (unless a retry has taken the claim over)."""
    _mine(record).update(state=IdempotencyRecord.State.DONE, status_code=response.status_code,
                         response_body=response.data)


def _release(record: IdempotencyRecord) -> None:
    """Let the client retry with the same key. With the database gone, the claim stays
    behind; a retry finds it abandoned (``_abandoned``)."""
    with suppress(DatabaseError):
        _mine(record).delete()


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Forget keys older than the retention period (at least 24 hours)."""
    now = now or timezone.now()
    hours = max(24, getattr(settings, "IDEMPOTENCY_RETENTION_HOURS", 48))
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=now - timedelta(hours=hours)
    ).delete()
    return deleted


def form_key() -> str:
    """A fresh key for one portal form (sent back with its POST)."""
    return secrets.token_urlsafe(16)


def run_once(*, user: AbstractBaseUser, key: str,
             action: Callable[[], T]) -> tuple[bool, T | None]:
    """Run ``action`` unless this form key was used: (ran, result).

    The key is claimed in the action's own transaction, so a failing action releases it
    with everything else it wrote.
    """
    if not key or len(key) > 64:
        return False, None
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(user_id=user.pk, key=f"portal:{key}",
                                             fingerprint="portal",
                                             state=IdempotencyRecord.State.DONE)
            return True, action()
    except IntegrityError:
        return False, None
