"""Buying: one POST with an Idempotency-Key returns the licence and the manifest."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.licensing.services import manifest_token, package_get
from exchange.purchases import services
from exchange.purchases.models import Purchase
from exchange.purchases.selectors import purchase_get_for_buyer
from exchange.purchases.serializers import (
    InvoiceOut,
    PurchaseCreatedOut,
    PurchaseIn,
    PurchaseOut,
    purchase_created_body,
)


class PurchaseListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(PurchaseOut), operation_id="purchases_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        purchases = Purchase.objects.select_related("work").filter(
            buyer=authenticated_user(request))
        return paginated_response(request, self, purchases, PurchaseOut)

    @extend_schema(request=PurchaseIn,
                   responses={201: PurchaseCreatedOut, **errors(402, 404, 409)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        data = PurchaseIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        purchase = services.purchase_create(
            buyer=authenticated_user(request), work_id=fields["work"], device_id=fields["device"],
            expected_price_minor=fields.get("expected_price_minor"),
            expected_currency=fields.get("expected_currency"),
        )
        licence, package = purchase.licence, package_get(purchase.work_id)
        assert licence is not None
        assert package is not None  # cached: the purchase has just used it
        return Response(purchase_created_body(purchase, licence, manifest_token(package)),
                        status=status.HTTP_201_CREATED)


class PurchaseDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=PurchaseOut)
    def get(self, request: Request, purchase_id: str) -> Response:
        purchase = purchase_get_for_buyer(user=authenticated_user(request),
                                          purchase_id=purchase_id)
        return Response(PurchaseOut(purchase).data)


class InvoiceView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=InvoiceOut)
    def get(self, request: Request, purchase_id: str) -> Response:
        purchase = purchase_get_for_buyer(user=authenticated_user(request),
                                          purchase_id=purchase_id)
        return Response(InvoiceOut(purchase.invoice).data)
