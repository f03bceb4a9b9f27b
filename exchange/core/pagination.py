from __future__ import annotations

import re
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

MAX_PAGE_SIZE = 100
MAX_PAGE = 10**9 - 1
_DIGITS = re.compile(r"[0-9]{1,9}")

#: the schemas of the two query parameters, as the paginator enforces them
PAGE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
PAGE_SIZE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}
#: the query parameters of every paginated list
PAGE_PARAMETERS = [
    OpenApiParameter("page", PAGE_SCHEMA, description="Page number, from 1."),
    OpenApiParameter("page_size", PAGE_SIZE_SCHEMA,
                     description=f"Items per page, 1 to {MAX_PAGE_SIZE} (default 20)."),
]


def _whole_number(request: Request, name: str, *, maximum: int) -> int | None:
    """The query parameter ``name``, given at most once, as a number from 1 to ``maximum``
    (None when absent). Anything else is a 400 naming the parameter: a typo must not
    quietly turn into the first page or the default size."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    value = values[0]
    if len(values) > 1 or not _DIGITS.fullmatch(value) or not 1 <= int(value) <= maximum:
        raise ValidationError({name: [_("A whole number from 1 to %(max)s, given once.")
                                      % {"max": maximum}]})
    return int(value)


class PagePagination(PageNumberPagination):
    """DRF's page numbers, strict: ``page`` and ``page_size`` are whole numbers in range
    or a 400 (DRF would quietly fall back to the first page or the default size); a page
    past the end is DRF's 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        size = _whole_number(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request: Request, paginator: Paginator) -> int:
        number = _whole_number(request, self.page_query_param, maximum=MAX_PAGE)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [{"name": parameter.name, "required": False, "in": "query",
                 "description": parameter.description, "schema": parameter.type}
                for parameter in PAGE_PARAMETERS]


# The serializer's instance type is left open: DRF's stubs type it as one object, but with
# many=True it is given a page (a list), which they cannot express.
def paginated_response(request: Request, view: APIView, queryset: QuerySet[Model],
                       serializer: type[BaseSerializer[Any]]) -> Response:
    """A page of ``queryset`` in the API's list shape (count, next, previous, results)."""
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def page_of(item: type[serializers.Serializer[Any]], *,
            extra: dict[str, serializers.Field[Any, Any, Any, Any]] | None = None
            ) -> serializers.Serializer[Any]:
    """The schema of one page of ``item``: what ``paginated_response`` returns.

    Views here are plain ``APIView``s, so drf-spectacular cannot see the paginator; this
    tells it the envelope (``count``, ``next``, ``previous``, ``results``) so that the
    published schema matches the bodies (fuzzers check it does).
    """
    name = item.__name__.removesuffix("Out")
    fields: dict[str, serializers.Field[Any, Any, Any, Any]] = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
        **(extra or {}),
    }
    return inline_serializer(name=f"Paginated{name}List", fields=fields)
