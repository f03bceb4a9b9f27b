"""A party's balances and monthly statements."""

from __future__ import annotations

import re

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.openapi import errors
from exchange.ledger.models import Account
from exchange.ledger.selectors import accounts_of, balances_of, platform_accounts
from exchange.ledger.serializers import BalanceOut, StatementOut
from exchange.ledger.statements import statements_csv, statements_for


class WalletView(APIView):
    """Everything you hold: wallet, earnings, seeding credit, compute credit, payouts on
    the way."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=inline_serializer(
        name="Wallet", fields={"balances": BalanceOut(many=True)}), operation_id="wallet_list")
    def get(self, request: Request) -> Response:
        accounts = balances_of(authenticated_user(request))
        return Response({"balances": BalanceOut(accounts, many=True).data})


def _statement_accounts(request: Request) -> list[Account]:
    user = authenticated_user(request)
    party = request.query_params.getlist("party")
    if party == ["platform"]:
        if not user.is_platform_admin:
            raise PermissionDenied(_("Only platform admins see the platform's statement."))
        return list(platform_accounts())
    if party:  # a typo must not quietly show one's own statement instead
        raise ValidationError({"party": [_("Leave it out, or give party=platform once.")]})
    return list(accounts_of(user))


_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")


def _month(period: str) -> tuple[int, int]:
    matched = _PERIOD.fullmatch(period)
    if matched is None:
        raise NotFound(_("Statements are per month: /statements/YYYY-MM/."))
    year, month = int(matched[1]), int(matched[2])
    if not (2000 <= year <= 9998 and 1 <= month <= 12):
        raise NotFound(_("No such month."))
    return year, month


_STATEMENT_PARAMETERS = [
    OpenApiParameter("period", str, OpenApiParameter.PATH, pattern=f"^{_PERIOD.pattern}$",
                     description="The month, YYYY-MM (2000-01 to 9998-12)."),
    OpenApiParameter("party", str, enum=["platform"],
                     description="Admins: the platform's own accounts."),
]


class StatementView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=_STATEMENT_PARAMETERS, responses={200: StatementOut, **errors(403)})
    def get(self, request: Request, period: str) -> Response:
        year, month = _month(period)
        statements = statements_for(_statement_accounts(request), year=year, month=month)
        return Response(StatementOut({"period": f"{year:04d}-{month:02d}",
                                      "accounts": statements}).data)


class StatementCsvView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=_STATEMENT_PARAMETERS,
                   responses={(200, "text/csv"): bytes, **errors(403)})
    def get(self, request: Request, period: str) -> HttpResponse:
        year, month = _month(period)
        statements = statements_for(_statement_accounts(request), year=year, month=month)
        response = HttpResponse(statements_csv(statements), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="peermark-statement-{year:04d}-{month:02d}.csv"'
        )
        return response
