"""The rooms API: a room's rules and history, and its moderation (owner and staff).

The live conversation itself is on the WebSocket (exchange/rooms/consumers.py); these
routes serve readers without a socket (agents, history pages) and moderators' tools.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import User, authenticated_user
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.rooms import selectors, services
from exchange.rooms.models import Room, SanctionKind
from exchange.rooms.serializers import (
    RoomMessageOut,
    RoomOut,
    RoomRulesIn,
    SanctionIn,
    SanctionOut,
    room_body,
)

ROOM_PATH = [
    OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(selectors.KINDS),
                     description="`work` (a work's room) or `member` (a rights holder's)."),
    OpenApiParameter("target", OpenApiTypes.STR, OpenApiParameter.PATH,
                     description="The work's id, or the rights holder's username."),
]


def _room(request: Request, kind: str, target: str) -> Room:
    user: User | AnonymousUser = request.user if isinstance(request.user, User) else AnonymousUser()
    return selectors.room_get_visible(user=user, kind=kind, target=target)


class RoomDetailView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(parameters=ROOM_PATH, responses=RoomOut, operation_id="rooms_retrieve")
    def get(self, request: Request, kind: str, target: str) -> Response:
        room = _room(request, kind, target)
        return Response(room_body(room, selectors.standing(room, request.user)))

    @extend_schema(parameters=ROOM_PATH, request=RoomRulesIn,
                   responses={200: RoomOut, **errors(403)}, operation_id="rooms_rules_update")
    @idempotent(required=False)
    def patch(self, request: Request, kind: str, target: str) -> Response:
        user = authenticated_user(request)
        room = _room(request, kind, target)
        selectors.room_check_moderator(room, user)
        data = RoomRulesIn(data=request.data)
        data.is_valid(raise_exception=True)
        room = services.room_rules_update(room=room, actor=user, **data.validated_data)
        return Response(room_body(room, selectors.standing(room, user)))

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request.method == "PATCH":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]


class RoomMessagesView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[*ROOM_PATH, *PAGE_PARAMETERS], responses={
        200: page_of(RoomMessageOut), **errors(403)}, operation_id="rooms_messages_list")
    def get(self, request: Request, kind: str, target: str) -> Response:
        """Newest first. A restricted room's history is for its licence holders."""
        room = _room(request, kind, target)
        selectors.room_check_read(room, request.user)
        return paginated_response(request, self, selectors.room_history(room), RoomMessageOut)


class _SanctionView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    kind: str = ""

    def _create(self, request: Request, kind: str, target: str) -> Response:
        user = authenticated_user(request)
        room = _room(request, kind, target)
        selectors.room_check_moderator(room, user)
        data = SanctionIn(data=request.data)
        data.is_valid(raise_exception=True)
        sanction = services.room_sanction(room=room, actor=user, kind=self.kind,
                                          **data.validated_data)
        return Response(SanctionOut(sanction).data, status=status.HTTP_201_CREATED)


class RoomMutesView(_SanctionView):
    kind = SanctionKind.MUTE

    @extend_schema(parameters=ROOM_PATH, request=SanctionIn,
                   responses={201: SanctionOut, **errors(403, 409)}, operation_id="rooms_mute")
    @idempotent(required=True)
    def post(self, request: Request, kind: str, target: str) -> Response:
        """Mute a member: they may read, not speak, for ``minutes``."""
        return self._create(request, kind, target)


class RoomKicksView(_SanctionView):
    kind = SanctionKind.KICK

    @extend_schema(parameters=ROOM_PATH, request=SanctionIn,
                   responses={201: SanctionOut, **errors(403, 409)}, operation_id="rooms_kick")
    @idempotent(required=True)
    def post(self, request: Request, kind: str, target: str) -> Response:
        """Kick a member: their open sockets close and they may not rejoin for ``minutes``."""
        return self._create(request, kind, target)
