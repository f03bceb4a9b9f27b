"""A backing service that is down answers 503, on every page, not a 500.

DRF views get this from the API's exception handler (``exchange.core.errors``); this
middleware does the same for everything else (the portal, the admin, the JWKS): a JSON
error body under ``/api/`` and ``/.well-known/``, a small page of its own elsewhere
(rendered without the site's base template, which would need the database).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from exchange.core.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE,
    log_unavailable,
    unavailable_body,
)


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        log_unavailable(exception, request.path)
        response: HttpResponse
        if request.path.startswith(("/api/", "/.well-known/")):
            response = JsonResponse(unavailable_body(), status=503)
        else:
            response = HttpResponse(render_to_string("unavailable.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
