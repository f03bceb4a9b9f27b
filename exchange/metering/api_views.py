"""Serving peers submit orders; buyers send receipts."""

from __future__ import annotations

from collections import Counter

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.openapi import errors
from exchange.licensing.selectors import licence_get_for_buyer
from exchange.metering import services
from exchange.metering.serializers import OrdersIn, OrdersOut, ReceiptIn, ReceiptOut


class OrdersView(APIView):
    """A batch of signed orders. Idempotent per order: one already recorded is reported
    as ``duplicate`` and counted once."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=OrdersIn, responses=OrdersOut)
    def post(self, request: Request) -> Response:
        data = OrdersIn(data=request.data)
        data.is_valid(raise_exception=True)
        outcomes = services.orders_ingest(submitter=authenticated_user(request),
                                          tokens=data.validated_data["orders"])
        counts = Counter(o.status for o in outcomes)
        return Response({
            "accepted": counts["accepted"], "duplicate": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": [{"index": o.index, "status": o.status, "reason": o.reason}
                        for o in outcomes],
        })


class ReceiptView(APIView):
    """The buyer's device-signed receipt for a licence. The same receipt again is a no-op."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=ReceiptIn, responses={201: ReceiptOut, **errors(409)})
    def post(self, request: Request, licence_id: str) -> Response:
        licence = licence_get_for_buyer(user=authenticated_user(request), licence_id=licence_id)
        data = ReceiptIn(data=request.data)
        data.is_valid(raise_exception=True)
        receipt = services.receipt_accept(licence=licence, token=data.validated_data["receipt"])
        return Response(ReceiptOut(receipt).data, status=status.HTTP_201_CREATED)
