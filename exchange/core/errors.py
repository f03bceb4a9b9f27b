"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

Clients (the agent above all) branch on ``code``, show ``message`` to a person, and
map ``fields`` onto form inputs, so every failure path renders through here.
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule said no. Services raise it; the API renders it as a 4xx."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.field = field


def reason_of(error: Exception) -> str:
    """A machine-readable reason from an exception's class: ``WrongDeviceError`` is
    ``wrong_device`` (how per-item refusals of signed documents are named)."""
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ErrorContent(TypedDict):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorBody(TypedDict):
    """The body of every error response."""

    error: ErrorContent


def error_body(
    code: str, message: str, fields: dict[str, list[str]] | None = None
) -> ErrorBody:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: object, prefix: str = "") -> dict[str, list[str]]:
    """DRF nests errors as dicts and lists; clients want ``field.sub: [messages]``, with
    list items as ``field[2]`` (DRF keys a list field's item errors by index)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{name}" if prefix else name
            for sub, messages in _flatten(value, path).items():
                out.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                for sub, messages in _flatten(item, f"{prefix}[{index}]").items():
                    out.setdefault(sub, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


#: A backing service is down or restarting: the database (a lost or refused connection,
#: and also a deadlock or serialization failure, which a retry resolves), Redis (the
#: metering stream, the cache; "loading" right after a restart is a connection error
#: too) or the Celery broker. The request did nothing that a retry would repeat.
UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError,
               BrokerError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = gettext_noop(
    "The service is briefly unavailable (a database or queue is restarting). Try again in a "
    "few seconds; retrying with the same Idempotency-Key is safe.")


def unavailable_body() -> ErrorBody:
    return error_body("service_unavailable", _(UNAVAILABLE_MESSAGE))


def log_unavailable(exc: BaseException, request_path: str) -> None:
    """One line, no traceback: an outage is an operations event, not a bug."""
    log.warning("503 for %s: %s: %s", request_path, type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "")


# ``context`` is DRF's (view, args, kwargs, request), passed on to its handler as it types it.
def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, UNAVAILABLE):
        request = context.get("request")
        log_unavailable(exc, getattr(request, "path", "?"))
        return Response(unavailable_body(), status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, ServiceError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        retry_after = getattr(exc, "retry_after", None)  # a rate limit says when to retry
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(error_body(exc.code, exc.message, fields), status=exc.status_code,
                        headers=headers)
    if isinstance(exc, DjangoValidationError):
        messages = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler takes it (JSON under /api/)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields))
        response.data = error_body("invalid", _("Invalid input: %(fields)s.") % {"fields": names},
                                   fields)
        return response
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail: object = getattr(exc, "detail", str(exc))
    message = str(detail) if not isinstance(detail, dict | list) else _("Request failed.")
    response.data = error_body(code, message)
    return response


def json_404(_request: HttpRequest, _exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", _("No such endpoint.")), status=404)


def json_500(_request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body(
            "server_error",
            _("Something went wrong on our side. Retrying with the same Idempotency-Key is "
              "safe."),
        ),
        status=500,
    )
