"""JWKS, devices, licences, manifests and the revocation list over the API."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.catalogue.models import WorkStatus
from exchange.catalogue.selectors import work_get_visible
from exchange.core.errors import ServiceError
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.licensing import services
from exchange.licensing.keys import platform_keyring
from exchange.licensing.models import Licence, WorkPackage
from exchange.licensing.selectors import device_get_for_owner, licence_get_for_buyer
from exchange.licensing.serializers import (
    DeviceIn,
    DeviceOut,
    EquivocationIn,
    EquivocationOut,
    LicenceOut,
    ManifestOut,
    RevocationListOut,
)


@require_GET
def jwks(_request: HttpRequest) -> JsonResponse:
    """The platform's public keys (RFC 7517), cached by agents for ``JWKS_MAX_AGE``."""
    response = JsonResponse(platform_keyring().to_jwks())
    response["Cache-Control"] = f"public, max-age={settings.JWKS_MAX_AGE}"
    return response


class DeviceListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=DeviceOut(many=True))
    def get(self, request: Request) -> Response:
        devices = authenticated_user(request).devices.all()
        return Response(DeviceOut(devices, many=True).data)

    @extend_schema(request=DeviceIn, responses={201: DeviceOut, **errors(409)})
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        data = DeviceIn(data=request.data)
        data.is_valid(raise_exception=True)
        device = services.device_register(user=authenticated_user(request), **data.validated_data)
        return Response(DeviceOut(device).data, status=status.HTTP_201_CREATED)


class DeviceRevokeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=DeviceOut)
    def post(self, request: Request, device_id: str) -> Response:
        user = authenticated_user(request)
        device = device_get_for_owner(user=user, device_id=device_id)
        return Response(DeviceOut(services.device_revoke(device=device, actor=user)).data)


class LicenceListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=page_of(LicenceOut), operation_id="licences_list",
                   parameters=[*PAGE_PARAMETERS, OpenApiParameter(
                       "work", OpenApiTypes.UUID,
                       description="Only licences for this work (an agent picking up a "
                                   "licence bought on the web).")])
    def get(self, request: Request) -> Response:
        licences = (Licence.objects.filter(buyer=authenticated_user(request))
                    .select_related("purchase"))
        work = request.query_params.get("work")
        if work is not None:
            try:
                licences = licences.filter(work_id=uuid.UUID(work))
            except ValueError:
                raise ServiceError(_("work is a work's id (a UUID)."), code="invalid",
                                   field="work") from None
        return paginated_response(request, self, licences, LicenceOut)


class LicenceDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=LicenceOut)
    def get(self, request: Request, licence_id: str) -> Response:
        licence = licence_get_for_buyer(user=authenticated_user(request), licence_id=licence_id)
        return Response(LicenceOut(licence).data)


class LicenceTableView(APIView):
    """A sealed licence's personal decryption table, encrypted under its table key.

    For the licence's own buyer only (anyone else: 404, as for the licence itself);
    refused once the licence is revoked. The bytes are recomputed on each request and
    are always the same: their SHA-256 and size are the licence's ``seal`` claim.
    """

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/octet-stream"): bytes,
                              **errors(403, 404)})
    def get(self, request: Request, licence_id: str) -> HttpResponse:
        licence = licence_get_for_buyer(user=authenticated_user(request), licence_id=licence_id)
        blob = services.licence_table(licence=licence)
        response = HttpResponse(blob, content_type="application/octet-stream")
        response["Cache-Control"] = "private, no-store"
        return response


class ManifestView(APIView):
    """A work's signed manifest, for seeders; buyers also get it with their purchase."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: ManifestOut, **errors(409)})
    def get(self, request: Request, work_id: str) -> Response:
        work = work_get_visible(user=request.user, work_id=work_id)
        package = WorkPackage.objects.filter(work=work).first()
        if package is None or work.status != WorkStatus.READY:
            return Response(
                {
                    "error": {
                        "code": "not_ready",
                        "message": _("This work is not packaged yet."),
                        "fields": {},
                    }
                },
                status=409,
            )
        return Response(
            ManifestOut(
                {
                    "work": work.pk,
                    "merkle_root": package.root,
                    "piece_size": package.piece_size,
                    "piece_count": package.piece_count,
                    "ciphertext_size": package.ciphertext_size,
                    "token": services.manifest_token(package),
                }
            ).data
        )


class RevocationListView(APIView):
    """The newest signed revocation list; agents refuse older versions than they hold."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=RevocationListOut, auth=[])
    def get(self, request: Request) -> Response:
        return Response(RevocationListOut(services.revocation_list_current()).data)


class RevocationEquivocationView(APIView):
    """An agent's evidence that two different revocation lists share one version."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=EquivocationIn, responses={201: EquivocationOut, 200: EquivocationOut})
    def post(self, request: Request) -> Response:
        data = EquivocationIn(data=request.data)
        data.is_valid(raise_exception=True)
        row, created = services.revocation_equivocation_report(
            user=authenticated_user(request), **data.validated_data
        )
        return Response(EquivocationOut(row).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
