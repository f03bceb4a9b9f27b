"""The tracing API: the portal's "Trace a copy", for rights holders' own tools."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.errors import ServiceError
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.core.uploads import upload_limit
from exchange.tracing.selectors import trace_report_get_for_owner, trace_reports_for
from exchange.tracing.serializers import TraceIn, TraceReportOut
from exchange.tracing.services import trace_copy


class TraceListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema(responses=page_of(TraceReportOut), operation_id="traces_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        return paginated_response(request, self, trace_reports_for(authenticated_user(request)),
                                  TraceReportOut)

    @extend_schema(request=TraceIn, responses={201: TraceReportOut, **errors(403, 413, 429)})
    @upload_limit("MAX_TRACE_BYTES")
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        user = authenticated_user(request)
        if not user.is_rights_holder:
            raise ServiceError(_("Only rights holders can trace copies."), code="forbidden",
                               status_code=403)
        data = TraceIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        report = trace_copy(owner=user, data=upload.read(settings.MAX_TRACE_BYTES + 1),
                            name=upload.name or "")
        return Response(TraceReportOut(report).data, status=status.HTTP_201_CREATED)


class TraceDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TraceReportOut)
    def get(self, request: Request, report_id: str) -> Response:
        report = trace_report_get_for_owner(owner=authenticated_user(request),
                                            report_id=report_id)
        if report is None:
            raise ServiceError(_("No such trace."), code="not_found", status_code=404)
        return Response(TraceReportOut(report).data)
