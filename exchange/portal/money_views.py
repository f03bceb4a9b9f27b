"""Portal pages about money: wallet, statements, purchases and invoices, sales, and the
platform's billing dashboard."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound

from exchange.accounts.models import authenticated_user
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.ledger.models import AccountKind, Posting
from exchange.ledger.selectors import accounts_of, balances_of
from exchange.ledger.statements import month_bounds, statements_csv, statements_for
from exchange.money.currencies import format_minor
from exchange.payments.models import Payout, TopUp
from exchange.payments.services import payout_request, topup_create
from exchange.portal.charts import bar_chart_svg
from exchange.portal.forms import PayoutForm, TopUpForm
from exchange.purchases.models import Purchase, PurchaseState, Settlement
from exchange.purchases.selectors import monthly_sales, purchase_get_for_buyer, sales_currencies


def _money(amount_minor: int, *, currency: str) -> str:
    return format_minor(amount_minor, currency)


def _form_errors(form: Form) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


def _recent_months(count: int = 6) -> list[str]:
    today = timezone.now().date().replace(day=1)
    months = []
    for _ in range(count):
        months.append(f"{today.year:04d}-{today.month:02d}")
        today = (today - dt.timedelta(days=1)).replace(day=1)
    return months


@login_required
def wallet(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    accounts = balances_of(user)
    return render(request, "portal/wallet.html", {
        "accounts": accounts,
        "topups": TopUp.objects.filter(user=user)[:10],
        "payouts": Payout.objects.filter(user=user)[:10],
        "topup_form": TopUpForm(initial={"once": form_key()}),
        "payout_form": PayoutForm(initial={"once": form_key()}),
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
        ran, _ = run_once(user=user, key=data["once"], action=lambda: action(data))
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
        "Top-up requested; your wallet is credited when the payment provider confirms it.",
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
        "Payout requested.",
    )


def _period(period: str) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in period.split("-"))
        month_bounds(year, month)
    except ValueError:
        raise Http404("No such month.") from None
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
def purchases(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    bought = Purchase.objects.select_related("work", "licence").filter(buyer=user)[:100]
    return render(request, "portal/purchases.html", {"purchases": bought})


@login_required
def invoice(request: HttpRequest, purchase_id: str) -> HttpResponse:
    try:
        purchase = purchase_get_for_buyer(user=authenticated_user(request),
                                          purchase_id=purchase_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    return render(request, "portal/invoice.html",
                  {"invoice": purchase.invoice, "purchase": purchase})


@login_required
def sales(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    charts = []
    for currency in sales_currencies(owner=user):
        series = monthly_sales(owner=user, currency=currency)
        charts.append({
            "currency": currency,
            "svg": bar_chart_svg([(label[5:], gross) for label, _count, gross in series],
                                 label=functools.partial(_money, currency=currency),
                                 title=f"Gross sales per month, {currency}"),
            "total_count": sum(count for _l, count, _g in series),
        })
    recent = (Purchase.objects.select_related("work", "buyer", "settlement")
              .filter(work__owner=user)[:50])
    return render(request, "portal/sales.html", {"charts": charts, "recent": recent})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Revenue, fees, escrow, payouts: the platform's money at a glance (staff only)."""
    if not authenticated_user(request).is_staff:
        return render(request, "portal/forbidden.html",
                      {"reason": "The billing dashboard is for the platform's staff."},
                      status=403)
    by_currency = []
    for currency in sorted(set(Posting.objects.values_list("currency", flat=True))):
        def total(kind: str, cur: str = currency) -> int:
            return int(Posting.objects.filter(account__kind=kind, currency=cur)
                       .aggregate(t=Sum("amount"))["t"] or 0)

        held = Purchase.objects.filter(currency=currency, state=PurchaseState.HELD)
        settled = Settlement.objects.filter(purchase__currency=currency)
        sums = settled.aggregate(royalty=Sum("royalty_minor"), fee=Sum("fee_minor"),
                                 seeding=Sum("seeding_minor"), gross=Sum("settled_minor"))
        months = []
        for label in reversed(_recent_months(12)):
            year, month = (int(p) for p in label.split("-"))
            start, end = month_bounds(year, month)
            fee = settled.filter(created_at__gte=start, created_at__lt=end).aggregate(
                t=Sum("fee_minor"))["t"] or 0
            months.append((label[5:], int(fee)))
        by_currency.append({
            "currency": currency,
            "fees": total(AccountKind.FEES),
            "escrow": total(AccountKind.ESCROW),
            "wallets": total(AccountKind.WALLET),
            "earnings": total(AccountKind.EARNINGS),
            "seeding": total(AccountKind.SEEDING),
            "payout_pending": total(AccountKind.PAYOUT_PENDING),
            "provider": -total(AccountKind.CLEARING),
            "held_count": held.count(),
            "settled": {k: int(v or 0) for k, v in sums.items()},
            "chart": bar_chart_svg(months, label=functools.partial(_money, currency=currency),
                                   title=f"Platform fees per month, {currency}")
            if any(fee for _month, fee in months) else "",
        })
    counts = Purchase.objects.aggregate(
        held=Count("id", filter=Q(state=PurchaseState.HELD)),
        settled=Count("id", filter=Q(state=PurchaseState.SETTLED)),
        refunded=Count("id", filter=Q(state=PurchaseState.REFUNDED)),
    )
    return render(request, "portal/dashboard.html", {
        "by_currency": by_currency, "counts": counts,
        "pending_payouts": Payout.objects.filter(state="pending").count(),
    })
