from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView


class PagePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


# The serializer's instance type is left open: DRF's stubs type it as one object, but with
# many=True it is given a page (a list), which they cannot express.
def paginated_response(request: Request, view: APIView, queryset: QuerySet[Model],
                       serializer: type[BaseSerializer[Any]]) -> Response:
    """A page of ``queryset`` in the API's list shape (count, next, previous, results)."""
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


#: the query parameters of every paginated list
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Items per page, 1 to 100 (default 20)."),
]


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
