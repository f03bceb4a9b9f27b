"""JWKS, devices, licences, manifests and the revocation list over the API."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
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
from exchange.core.pagination import (
    PAGE_PARAMETERS,
    PagePagination,
    page_of,
    paginated_response,
)
from exchange.licensing import library, services
from exchange.licensing.keys import platform_keyring
from exchange.licensing.models import Licence, WorkPackage
from exchange.licensing.selectors import device_get_for_owner, licence_get_for_buyer
from exchange.licensing.serializers import (
    DeviceIn,
    DeviceOut,
    EquivocationIn,
    EquivocationOut,
    LibraryWorkOut,
    LicenceOut,
    ManifestOut,
    MoveIn,
    ReissueIn,
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
                    .select_related("purchase", "origin__purchase"))
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


# --- one library on every device (exchange/licensing/library.py) ---------------------


class LicenceDevicesView(APIView):
    """Re-issue one of your licences to another of your devices: not a sale."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=ReissueIn, operation_id="licences_devices_create",
                   responses={201: LicenceOut, 200: LicenceOut, **errors(404, 409, 429)},
                   description="A new licence for the same work on `device` (new wrapped "
                               "keys, its own watermark payload; the original's uses, expiry "
                               "and byte allowance); no payment. 200 with the device's live "
                               "licence if it already holds one. Refusals: `400 "
                               "unknown_device`, `409 device_revoked`, `409 licence_revoked`, "
                               "`409 licence_expired`, `409 device_limit`; `429 "
                               "rate_limited` past `PEERMARK_LIBRARY_RATE` re-issues and "
                               "moves a member may ask for.")
    @idempotent(required=True)
    def post(self, request: Request, licence_id: str) -> Response:
        user = authenticated_user(request)
        source = licence_get_for_buyer(user=user, licence_id=licence_id)
        data = ReissueIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = library.licence_reissue(member=user, source=source,
                                         device_id=data.validated_data["device"])
        return Response(LicenceOut(result.licence).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class LicenceMoveView(APIView):
    """Move a licence's device slot: revoke it, issue one to another of your devices."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=MoveIn, operation_id="licences_move_create",
                   responses={201: LicenceOut, 200: LicenceOut, **errors(404, 409, 429)},
                   description="Revokes this licence (it joins the next revocation list) "
                               "and returns the licence on `to_device`: new (201), or the "
                               "live one it already held (200). Refusals: `400 "
                               "unknown_device`, `409 same_device`, `409 device_revoked`, "
                               "`409 licence_revoked`, `409 licence_expired`, "
                               "`409 device_limit`, `409 too_many_moves` (more than "
                               "`PEERMARK_LIBRARY_MOVES_PER_30_DAYS` moves of one purchase's "
                               "licences in 30 days); `429 rate_limited`.")
    @idempotent(required=True)
    def post(self, request: Request, licence_id: str) -> Response:
        user = authenticated_user(request)
        source = licence_get_for_buyer(user=user, licence_id=licence_id)
        data = MoveIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = library.licence_move(member=user, source=source,
                                      to_device_id=data.validated_data["to_device"])
        return Response(LicenceOut(result.licence).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class LibraryView(APIView):
    """Your works, each with its licences per device and the work's device limit."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=page_of(LibraryWorkOut), operation_id="library_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        user = authenticated_user(request)
        paginator = PagePagination()
        works = paginator.paginate_queryset(library.library_works(member=user), request,
                                            view=self) or []
        now = timezone.now()
        entries = library.library_entries(member=user, works=works, now=now)
        slots = {licence.pk: library.licence_takes_slot(licence, now)
                 for entry in entries for licence in entry.licences}
        body = LibraryWorkOut(entries, many=True, context={"slots": slots}).data
        return paginator.get_paginated_response(body)
