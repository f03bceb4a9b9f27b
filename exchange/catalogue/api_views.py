"""The works API: thin views over the catalogue's services and selectors."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import User, authenticated_user
from exchange.catalogue import services
from exchange.catalogue.filters import WorkFilter
from exchange.catalogue.models import Work
from exchange.catalogue.selectors import (
    work_get_for_owner,
    work_get_visible,
    works_owned_by,
    works_visible_to,
)
from exchange.catalogue.serializers import OwnWorkOut, WorkCreateIn, WorkOut, WorkUpdateIn
from exchange.catalogue.storage import preview_abspath
from exchange.core.errors import ServiceError, error_body
from exchange.core.idempotency import idempotent
from exchange.core.jsontypes import JSONObject
from exchange.core.openapi import errors
from exchange.core.uploads import upload_limit


def _out(work: Work, user: User | AnonymousUser) -> JSONObject:
    serializer = OwnWorkOut if work.owner_id == getattr(user, "pk", None) else WorkOut
    return dict(serializer(work).data)


MINE_VALUES = {"true": True, "1": True, "false": False, "0": False}


class WorkListCreateView(generics.ListAPIView):
    """Search and list works on sale; rights holders register new ones (multipart upload)."""

    serializer_class = WorkOut
    filterset_class = WorkFilter
    search_fields = ["title", "description"]
    ordering_fields = ["created_at", "price_minor", "title"]
    ordering = ["-created_at"]
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet[Work]:
        mine = self.request.query_params.get("mine", "false").lower()
        if mine not in MINE_VALUES:
            # A typo must not quietly list everyone's works instead of one's own.
            raise ServiceError(_("mine is true or false (or 1 or 0)."), code="invalid",
                               field="mine")
        if MINE_VALUES[mine] and self.request.user.is_authenticated:
            return works_owned_by(self.request.user)
        return works_visible_to(self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("mine", bool, description="Only my own works, in any state.")]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=WorkCreateIn, responses={201: OwnWorkOut, **errors(403, 413)})
    @upload_limit("MAX_UPLOAD_BYTES")
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        if not getattr(request.user, "is_rights_holder", False):
            raise ServiceError(
                _("Only rights holders can register works."),
                code="not_a_rights_holder",
                status_code=403,
            )
        data = WorkCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = fields["file"]
        work = services.work_register(
            owner=authenticated_user(request),
            title=fields["title"],
            description=fields["description"],
            upload=upload,
            upload_size=upload.size,
            original_filename=upload.name or "",
            price_minor=fields["price_minor"],
            currency=fields["currency"],
            allowed_uses=fields["allowed_uses"],
            licence_days=fields["licence_days"],
            byte_allowance_multiple=fields["byte_allowance_multiple"],
            media_type=fields.get("media_type"),
            delivery_mode=fields.get("delivery_mode"),
            device_limit=fields["device_limit"],
        )
        work.refresh_from_db()
        return Response(OwnWorkOut(work).data, status=status.HTTP_201_CREATED)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request.method == "POST":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]


#: one work as its viewer sees it: the owner's shape, or the public one (which has no
#: more fields than it lists, so a body matches exactly one of the two)
WORK_FOR_VIEWER = PolymorphicProxySerializer(
    component_name="WorkForViewer", serializers=[OwnWorkOut, WorkOut],
    resource_type_field_name=None,
)


class WorkDetailView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(responses=WORK_FOR_VIEWER)
    def get(self, request: Request, work_id: str) -> Response:
        return Response(_out(work_get_visible(user=request.user, work_id=work_id), request.user))

    @extend_schema(request=WorkUpdateIn, responses={200: OwnWorkOut, **errors(403, 409)})
    def patch(self, request: Request, work_id: str) -> Response:
        if not request.user.is_authenticated:
            return Response(error_body("not_authenticated", _("Log in to change a work.")),
                            status=401)
        work = work_get_for_owner(user=request.user, work_id=work_id)
        data = WorkUpdateIn(instance=work, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        work = services.work_update_terms(
            work=work, actor=request.user, changes=data.validated_data
        )
        return Response(OwnWorkOut(work).data)


class WorkWithdrawView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=OwnWorkOut)
    @idempotent(required=False)
    def post(self, request: Request, work_id: str) -> Response:
        work = work_get_for_owner(user=request.user, work_id=work_id)
        work = services.work_withdraw(work=work, actor=authenticated_user(request))
        return Response(OwnWorkOut(work).data)


class WorkPreviewView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={(200, "image/jpeg"): bytes})
    def get(self, request: Request, work_id: str) -> Response | FileResponse:
        work = work_get_visible(user=request.user, work_id=work_id)
        if not work.preview_path:
            return Response(error_body("not_found", _("This work has no preview.")), status=404)
        return FileResponse(
            preview_abspath(work.preview_path).open("rb"), content_type="image/jpeg"
        )
