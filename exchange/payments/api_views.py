"""Top-ups, payouts, and the provider's webhook endpoint."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.access import get_owned
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.payments import services
from exchange.payments.models import Payout, TopUp
from exchange.payments.serializers import PayoutIn, PayoutOut, TopUpIn, TopUpOut
from exchange.payments.webhooks import webhook_receive


class TopUpListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(TopUpOut), operation_id="wallet_topups_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        topups = TopUp.objects.filter(user=authenticated_user(request))
        return paginated_response(request, self, topups, TopUpOut)

    @extend_schema(request=TopUpIn, responses={201: TopUpOut, **errors(503)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        data = TopUpIn(data=request.data)
        data.is_valid(raise_exception=True)
        topup = services.topup_create(user=authenticated_user(request), **data.validated_data)
        topup.refresh_from_db()
        return Response(TopUpOut(topup).data, status=status.HTTP_201_CREATED)


class TopUpDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TopUpOut)
    def get(self, request: Request, topup_id: str) -> Response:
        return Response(TopUpOut(get_owned(TopUp, topup_id, authenticated_user(request))).data)


class PayoutListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(PayoutOut), operation_id="payouts_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        payouts = Payout.objects.filter(user=authenticated_user(request))
        return paginated_response(request, self, payouts, PayoutOut)

    @extend_schema(request=PayoutIn, responses={201: PayoutOut, **errors(402, 503)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        data = PayoutIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        payout = services.payout_request(
            user=authenticated_user(request), source=fields["account"],
            amount_minor=fields["amount_minor"], currency=fields["currency"],
            options=fields["options"],
        )
        payout.refresh_from_db()
        return Response(PayoutOut(payout).data, status=status.HTTP_201_CREATED)


class _RawBody(BaseParser):
    """Signatures cover the exact bytes, so the body must not be parsed before checking."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return stream.read() if stream is not None else b""


class WebhookView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    parser_classes = [_RawBody]

    @extend_schema(request={"application/json": {"type": "object"}},
                   responses={200: {"type": "object"}, **errors(400, 401, 404, 413)},
                   auth=[])
    def post(self, request: Request, provider: str) -> Response:
        outcome = webhook_receive(
            provider=provider, headers=dict(request.headers), body=request.body
        )
        return Response({"status": "ok", "outcome": outcome})
