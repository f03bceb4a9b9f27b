"""What the OpenAPI schema says about failures: the one error body, and when it comes.

Every operation lists each status it can answer with, in the shape of
``exchange.core.errors``. Most follow from how the operation is built, and the schema
class below adds those: a bad or revoked token (401) wherever a view authenticates, a
missing object (404) wherever the path names one, invalid input (400) and a wrong
content type (415) wherever there is a body, and so on. What only the business rules
know (402 insufficient funds, 409 own work, ...) a view adds with ``errors()``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication

#: what each status means in this API (docs/API.md, "Errors", says the same)
MEANINGS = {
    400: "Invalid input (see `fields`), a malformed body, or a missing or malformed "
         "Idempotency-Key.",
    401: "No token, or a malformed, unknown or revoked one; or a wrong password.",
    402: "Not enough money in the wallet.",
    403: "Seen but not allowed: not yours, not your role, or (with a session) no CSRF token.",
    404: "No such object, or not one you may see; or a page past the end of a list.",
    409: "The current state forbids it, or a request with this Idempotency-Key is still "
         "running.",
    413: "The body or file is larger than the limit.",
    415: "The body's content type is not one this operation takes, or the file is not a "
         "supported type.",
    422: "This Idempotency-Key was used for a different request.",
    429: "Too many requests; try again later.",
    503: "A backing service (the database, Redis or the task queue) is briefly down, or no "
         "payment provider is configured; try again after `Retry-After` seconds.",
}


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: `invalid`, `not_found`, ...")
    message = serializers.CharField(help_text="For people.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``fields`` names a Serializer attribute, so that key cannot be declared above.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Input names (fields, JSON keys or headers) to their messages.",
        )
        return fields


class ErrorOut(serializers.Serializer):
    """The body of every error response."""

    error = ErrorDetailOut()


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses ``statuses``, for an ``@extend_schema(responses=...)`` dict."""
    return {status: OpenApiResponse(ErrorOut, description=MEANINGS[status])
            for status in statuses}


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def implied_statuses(view: Any, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses that follow from the operation's shape alone."""
    parameters = operation.get("parameters", [])
    where = {parameter["in"] for parameter in parameters}
    names = {parameter["name"] for parameter in parameters}
    statuses: set[int] = set()
    authenticators = list(getattr(view, "authentication_classes", []))
    if authenticators:
        statuses.add(401)  # any request may carry a bad or revoked token
    if method in UNSAFE_METHODS and any(
            issubclass(cls, SessionAuthentication) for cls in authenticators):
        statuses.add(403)  # a session without its CSRF token
    if "path" in where or "page" in names:
        statuses.add(404)  # no such object (or not yours); a page past the end
    if "requestBody" in operation:
        statuses.update({400, 415})  # invalid or malformed; a content type it does not take
    if "query" in where:
        statuses.add(400)  # a query parameter that is not what the schema says
    if "Idempotency-Key" in names:
        # the key is checked, and the body read to fingerprint the request
        statuses.update({400, 409, 415, 422})
    if getattr(view, "throttle_classes", []):
        statuses.add(429)
    statuses.add(503)  # any operation may meet a restarting database, Redis or queue
    return statuses


class ApiSchema(AutoSchema):
    """drf-spectacular's schema class, plus the error responses each operation implies."""

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str,
                      registry: ComponentRegistry) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = {"application/json": {"schema": self.resolve_serializer(
            ErrorOut, "response").ref}}
        responses = operation["responses"]
        for status in implied_statuses(self.view, self.method, operation):
            responses.setdefault(str(status), {"content": error,
                                               "description": MEANINGS[status]})
        operation["responses"] = dict(sorted(responses.items()))
        return operation
