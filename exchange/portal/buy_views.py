"""Buying on the web, and the buyer's library (licences, devices, seeding and compute
earnings).

A licence is bound to one device's keys (the content key is wrapped to it), so the web
buys for a device the member's agent registered; the agent then fetches the work with
the licence it finds on the platform. The purchase is the API's own service, run once
per form key: a double click or a resubmitted form buys once.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound

from exchange.accounts.models import authenticated_user
from exchange.catalogue.selectors import work_get_visible
from exchange.core.errors import ServiceError
from exchange.core.idempotency import run_once
from exchange.ledger.models import AccountKind
from exchange.ledger.selectors import balances_of
from exchange.licensing.models import Device, Licence
from exchange.licensing.services import device_revoke as revoke_device
from exchange.portal.forms import BuyForm
from exchange.purchases.models import Purchase
from exchange.purchases.services import purchase_create


@login_required
@require_POST
def buy(request: HttpRequest, work_id: str) -> HttpResponse:
    user = authenticated_user(request)
    try:
        work = work_get_visible(user=user, work_id=work_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    form = BuyForm(request.POST, user=user)
    if not form.is_valid():
        messages.error(request, "; ".join(str(e) for errors in form.errors.values()
                                          for e in errors))
        return redirect("portal:work-detail", work_id=work_id)
    data = form.cleaned_data
    if Licence.objects.filter(buyer=user, work=work, device_id=data["device"],
                              revoked_at__isnull=True, expires_at__gt=timezone.now()).exists():
        messages.info(request, _("You already hold a licence for this work on that device."))
        return redirect("portal:work-detail", work_id=work_id)
    try:
        ran, _purchase = run_once(user=user, key=data["once"], action=lambda: purchase_create(
            buyer=user, work_id=work.pk, device_id=data["device"],
            expected_price_minor=data["expected_price_minor"],
            expected_currency=data["expected_currency"]))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if ran:
            messages.success(request, _("Bought. Your agent fetches it with the command below."))
    return redirect("portal:work-detail", work_id=work_id)


@login_required
def library(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    bought = (Purchase.objects.select_related("work", "licence", "licence__device")
              .filter(buyer=user)[:100])
    balances = list(balances_of(user).filter(kind__in=(AccountKind.SEEDING,
                                                       AccountKind.COMPUTE)))
    seeding = [account for account in balances if account.kind == AccountKind.SEEDING]
    compute = [account for account in balances if account.kind == AccountKind.COMPUTE]
    return render(request, "portal/purchases.html", {
        "purchases": bought, "devices": Device.objects.filter(user=user), "seeding": seeding,
        "compute": compute,
    })


@login_required
@require_POST
def device_revoke(request: HttpRequest, device_id: str) -> HttpResponse:
    """Revoke one of the member's own devices (a lost laptop): its licences stop working
    at every peer. Another member's device is "not found", as if it did not exist."""
    user = authenticated_user(request)
    device = Device.objects.filter(pk=device_id, user=user).first()
    if device is None:
        return render(request, "portal/not_found.html", status=404)
    if device.revoked_at is None:
        revoke_device(device=device, actor=user)
        messages.success(request, _("“%(name)s” is revoked: its licences no longer work.")
                         % {"name": device.name})
    return redirect("portal:purchases")
