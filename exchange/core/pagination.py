from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
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
