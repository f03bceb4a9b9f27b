"""Portal pages about money: wallet, statements, purchases and invoices, sales, and the
platform's billing dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound

from exchange.accounts.models import authenticated_user
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.ledger.selectors import accounts_of, balances_of
from exchange.ledger.statements import month_bounds, statements_csv, statements_for
from exchange.money.currencies import format_minor
from exchange.payments.models import Payout, TopUp
from exchange.payments.services import PAYOUT_ACCOUNTS, payout_request, topup_create
from exchange.portal.forms import PayoutForm, TopUpForm
from exchange.purchases.selectors import purchase_get_for_buyer


def _money(amount_minor: int, *, currency: str) -> str:
    return format_minor(amount_minor, currency)


def _form_errors(form: Form) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


def _recent_months(count: int = 6) -> list[str]:
    today = timezone.now().date().replace(day=1)
    months = []
    for _month in range(count):
        months.append(f"{today.year:04d}-{today.month:02d}")
        today = (today - dt.timedelta(days=1)).replace(day=1)
    return months


@login_required
def wallet(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    accounts = balances_of(user)
    payable = {str(kind): source for source, kind in PAYOUT_ACCOUNTS.items()}
    sources: dict[str, list[str]] = {}
    for account in accounts:
        if account.kind in payable and account.balance > 0:
            sources.setdefault(payable[account.kind], []).append(account.currency)
    return render(request, "portal/wallet.html", {
        "accounts": accounts,
        "topups": TopUp.objects.filter(user=user)[:10],
        "payouts": Payout.objects.filter(user=user)[:10],
        "topup_form": TopUpForm(initial={"once": form_key()}),
        "payout_form": PayoutForm(initial={"once": form_key()}, sources=sources)
        if sources else None,
        "months": _recent_months(),
    })


def _money_form(request: HttpRequest, form: Form, action: Callable[[dict[str, Any]], object],
                success: str) -> HttpResponse:
    """Run a wallet form's service once per form key, and say how it went."""
    user = authenticated_user(request)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect("portal:wallet")
    data = form.cleaned_data
    try:
        ran, _result = run_once(user=user, key=data["once"], action=lambda: action(data))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if ran:
            messages.success(request, success)
    return redirect("portal:wallet")


@login_required
@require_POST
def wallet_topup(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    return _money_form(
        request, TopUpForm(request.POST),
        lambda data: topup_create(user=user, amount_minor=data["amount_minor"],
                                  currency=data["currency"], options=data["options"]),
        _("Top-up requested; your wallet is credited when the payment provider confirms it."),
    )


@login_required
@require_POST
def wallet_payout(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    return _money_form(
        request, PayoutForm(request.POST),
        lambda data: payout_request(user=user, source=data["account"],
                                    amount_minor=data["amount_minor"], currency=data["currency"],
                                    options=data["options"]),
        _("Payout requested."),
    )


def _period(period: str) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in period.split("-"))
        month_bounds(year, month)
    except ValueError:
        raise Http404(_("No such month.")) from None
    return year, month


@login_required
def statement(request: HttpRequest, period: str) -> HttpResponse:
    user = authenticated_user(request)
    year, month = _period(period)
    statements = statements_for(accounts_of(user), year=year, month=month)
    if request.GET.get("format") == "csv":
        response = HttpResponse(statements_csv(statements), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="peermark-statement-{year:04d}-{month:02d}.csv"')
        return response
    return render(request, "portal/statement.html",
                  {"statements": statements, "period": f"{year:04d}-{month:02d}"})


@login_required
def invoice(request: HttpRequest, purchase_id: str) -> HttpResponse:
    try:
        purchase = purchase_get_for_buyer(user=authenticated_user(request),
                                          purchase_id=purchase_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    return render(request, "portal/invoice.html",
                  {"invoice": purchase.invoice, "purchase": purchase})
