"""Who am I, and API tokens for agents (log in once with a password, then use the token)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from exchange.accounts import services
from exchange.accounts.models import ApiToken, authenticated_user
from exchange.accounts.serializers import MeOut, TokenCreatedOut, TokenCreateIn, TokenOut
from exchange.core.errors import error_body


class LoginThrottle(AnonRateThrottle):
    scope = "login"


class MeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MeOut)
    def get(self, request: Request) -> Response:
        return Response(MeOut(request.user).data)


class TokenListCreateView(APIView):
    # Password login for agents. Not idempotent by key: each call makes a new token on
    # purpose, and a lost response only leaves an unused token the user can revoke.
    throttle_classes = [LoginThrottle]

    def get_permissions(self) -> list[permissions.BasePermission]:
        # Listing needs a login; logging in does not. Any other method is a 405 for
        # everyone, not a 401 that would suggest logging in could help.
        if self.request.method in ("GET", "HEAD"):
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]

    @extend_schema(responses=TokenOut(many=True))
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(
            user=authenticated_user(request), revoked_at__isnull=True
        ).order_by("-id")
        return Response(TokenOut(tokens, many=True).data)

    @extend_schema(request=TokenCreateIn, responses={201: TokenCreatedOut}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None:
            return Response(
                error_body("invalid_credentials", _("Wrong username or password.")),
                status=status.HTTP_401_UNAUTHORIZED,
            )
        issued = services.api_token_create(user=user, name=data.validated_data["name"])
        body = TokenOut(issued.token).data | {"token": issued.raw}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        token = ApiToken.objects.filter(user=authenticated_user(request), pk=token_id).first()
        if token is None:
            return Response(error_body("not_found", _("No such token.")), status=404)
        services.api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
