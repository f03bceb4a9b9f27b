"""What every upload checks before its body is read."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from django.http import HttpRequest
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.core.errors import error_body

#: room for a multipart body's framing and its other form fields, beside the file
MULTIPART_SLACK = 64 * 1024

View = TypeVar("View", bound=Callable[..., Response])


def declared_length(request: HttpRequest) -> int:
    """The body size the client declared; 0 when absent or not a number (the parser then
    limits the read)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def too_large(request: HttpRequest, max_file_bytes: int) -> bool:
    """Whether the body cannot hold a file within ``max_file_bytes``: refused unread,
    before Django spools it to disk or anything hashes it."""
    return declared_length(request) > max_file_bytes + MULTIPART_SLACK


def upload_limit(setting: str) -> Callable[[View], View]:
    """Refuse, with 413 and nothing read, an API upload larger than ``settings.<setting>``.

    Goes outermost, above ``@idempotent``, whose fingerprint reads the whole body.
    """
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(self: APIView, request: Request, *args: object, **kwargs: object) -> Response:
            from django.conf import settings

            limit = int(getattr(settings, setting))
            if too_large(request, limit):
                return Response(error_body(
                    "file_too_large", f"The file is larger than the limit of {limit:,} bytes.",
                    {"file": ["Too large."]}), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
            return view(self, request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
