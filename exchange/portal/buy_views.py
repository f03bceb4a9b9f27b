"""Buying on the web, and the buyer's library (licences, devices, seeding and compute
earnings).

A licence is bound to one device's keys (the content key is wrapped to it), so the web
buys for a device the member's agent registered; the agent then fetches the work with
the licence it finds on the platform. The purchase is the API's own service, run once
per form key: a double click or a resubmitted form buys once.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound

from exchange.accounts.models import User, authenticated_user
from exchange.catalogue.selectors import work_get_visible
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.ledger.models import AccountKind
from exchange.ledger.selectors import balances_of
from exchange.licensing.library import (
    library_entries,
    library_works,
    licence_move,
    licence_reissue,
    licence_takes_slot,
)
from exchange.licensing.models import Device, Licence
from exchange.licensing.selectors import licence_get_for_buyer
from exchange.licensing.services import device_revoke as revoke_device
from exchange.portal.forms import BuyForm, LicenceDeviceForm
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
    devices = list(Device.objects.filter(user=user))
    return render(request, "portal/purchases.html", {
        "purchases": bought, "devices": devices, "seeding": seeding,
        "compute": compute, "library": _library_rows(user, devices),
    })


def _library_rows(user: User, devices: list[Device]) -> list[dict[str, Any]]:
    """Each work with its licences per device, and what the member may do with them: add
    a device that holds none (while slots are free), move a live licence to another."""
    now = timezone.now()
    usable = [device for device in devices if device.revoked_at is None]
    rows = []
    for entry in library_entries(member=user, works=library_works(member=user)[:100],
                                 now=now):
        live = [lic for lic in entry.licences if lic.revoked_at is None and lic.expires_at > now]
        holding = {lic.device_id for lic in live if lic.device.revoked_at is None}
        free = [device for device in usable if device.pk not in holding]
        rows.append({
            "entry": entry, "source": live[0] if live else None, "add_to": free,
            "can_add": bool(free) and entry.slots_used < entry.work.device_limit,
            "add_key": form_key(),
            "licences": [{"licence": lic, "live": lic in live,
                          "takes_slot": licence_takes_slot(lic, now),
                          "move_to": [d for d in usable if d.pk != lic.device_id],
                          "move_key": form_key()} for lic in entry.licences],
        })
    return rows


def _licence_device_action(request: HttpRequest, licence_id: str, *, move: bool
                           ) -> HttpResponse:
    user = authenticated_user(request)
    try:
        source = licence_get_for_buyer(user=user, licence_id=licence_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    form = LicenceDeviceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(str(e) for errors in form.errors.values()
                                          for e in errors))
        return redirect("portal:purchases")
    data = form.cleaned_data
    try:
        if move:
            ran, result = run_once(user=user, key=data["once"], action=lambda: licence_move(
                member=user, source=source, to_device_id=data["device"]))
        else:
            ran, result = run_once(user=user, key=data["once"], action=lambda: licence_reissue(
                member=user, source=source, device_id=data["device"]))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if ran and result is not None:
            name = result.licence.device.name
            if move:
                messages.success(request, _("Moved to “%(device)s”; the licence on the other "
                                            "device is revoked.") % {"device": name})
            elif result.created:
                messages.success(request, _("“%(device)s” has a licence now: run "
                                            "`peermark-agent get` there.") % {"device": name})
            else:
                messages.info(request, _("“%(device)s” already holds a licence for this "
                                         "work.") % {"device": name})
    return redirect("portal:purchases")


@login_required
@require_POST
def licence_add_device(request: HttpRequest, licence_id: str) -> HttpResponse:
    """Re-issue one of the member's licences to another of their devices (no payment)."""
    return _licence_device_action(request, licence_id, move=False)


@login_required
@require_POST
def licence_move_device(request: HttpRequest, licence_id: str) -> HttpResponse:
    """Move a licence's device slot from one of the member's devices to another."""
    return _licence_device_action(request, licence_id, move=True)


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
