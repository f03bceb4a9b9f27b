"""The peer index over the API: announce, heartbeat, sources, web seeds; and the index
credentials agents take to the fast path (``peerindex``), where it is offered."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.catalogue.selectors import work_get_for_owner, work_get_visible
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, PagePagination, page_of
from exchange.peers import services
from exchange.peers.models import WebSeed
from exchange.peers.selectors import sources_list, web_seeds_for
from exchange.peers.serializers import (
    AnnounceIn,
    HeartbeatIn,
    IndexCredentialIn,
    IndexCredentialOut,
    IndexCredentialRevokeIn,
    PeerOut,
    SourceOut,
    WebSeedIn,
    WebSeedOut,
)


class AnnounceView(APIView):
    """An agent says where it listens and which pieces it holds (also a heartbeat).
    Naturally idempotent: the same announce twice leaves the same state."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=AnnounceIn, responses={200: PeerOut, **errors(409)})
    def post(self, request: Request) -> Response:
        data = AnnounceIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        peer = services.peer_announce(
            user=authenticated_user(request), device_id=fields["device"], host=fields["host"],
            port=fields["port"], source=request.META.get("REMOTE_ADDR", ""),
            holdings=[services.Announced(h["work"], h["bitfield"]) for h in fields["holdings"]],
            replace=fields["replace"], version=fields["version"],
        )
        return Response(PeerOut(peer).data)


class HeartbeatView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=HeartbeatIn, responses={200: PeerOut, **errors(409)})
    def post(self, request: Request) -> Response:
        data = HeartbeatIn(data=request.data)
        data.is_valid(raise_exception=True)
        peer = services.peer_heartbeat(user=authenticated_user(request),
                                       device_id=data.validated_data["device"])
        return Response(PeerOut(peer).data)


class IndexCredentialView(APIView):
    """A short-lived credential for the index fast path, for one of the caller's devices.
    Each call mints a new one (no state is kept), so a retry is harmless."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=IndexCredentialIn,
                   responses={201: IndexCredentialOut, **errors(404, 409)})
    def post(self, request: Request) -> Response:
        data = IndexCredentialIn(data=request.data)
        data.is_valid(raise_exception=True)
        body = services.index_credential_issue(user=authenticated_user(request),
                                               device_id=data.validated_data["device"])
        return Response(IndexCredentialOut(body).data, status=status.HTTP_201_CREATED)


class IndexCredentialRevokeView(APIView):
    """Refuse one of the caller's index credentials before it runs out (logging out).
    Revoking one twice, or one already expired, is the same success."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=IndexCredentialRevokeIn, responses={204: None})
    def post(self, request: Request) -> Response:
        data = IndexCredentialRevokeIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.index_credential_revoke(user=authenticated_user(request),
                                         token=data.validated_data["token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class SourcesView(APIView):
    """Live peers holding pieces of a work (paginated, best first) and its web seeds."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=page_of(SourceOut, extra={"web_seeds": serializers.ListField(
            child=serializers.URLField())}),
        parameters=PAGE_PARAMETERS,
        operation_id="works_sources_list",
    )
    def get(self, request: Request, work_id: str) -> Response:
        work = work_get_visible(user=request.user, work_id=work_id)
        paginator = PagePagination()
        page = paginator.paginate_queryset(sources_list(work), request, view=self)
        response = paginator.get_paginated_response(SourceOut(page, many=True).data)
        response.data["web_seeds"] = [seed.url for seed in web_seeds_for(work)]
        return response


class WebSeedListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses={200: WebSeedOut(many=True), **errors(403)})
    def get(self, request: Request, work_id: str) -> Response:
        work = work_get_for_owner(user=authenticated_user(request), work_id=work_id)
        return Response(WebSeedOut(web_seeds_for(work), many=True).data)

    @extend_schema(request=WebSeedIn, responses={201: WebSeedOut})
    def post(self, request: Request, work_id: str) -> Response:
        user = authenticated_user(request)
        work = work_get_for_owner(user=user, work_id=work_id)
        data = WebSeedIn(data=request.data)
        data.is_valid(raise_exception=True)
        seed = services.web_seed_add(work=work, actor=user, url=data.validated_data["url"])
        return Response(WebSeedOut(seed).data, status=status.HTTP_201_CREATED)


class WebSeedDeleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, work_id: str, seed_id: int) -> Response:
        user = authenticated_user(request)
        work = work_get_for_owner(user=user, work_id=work_id)
        seed = WebSeed.objects.filter(work=work, pk=seed_id).first()
        if seed is None:
            raise NotFound(_("No such web seed."))
        services.web_seed_remove(seed=seed, actor=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
