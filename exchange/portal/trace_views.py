"""Portal pages for tracing a leaked copy: upload a suspect file, read the report."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from exchange.accounts.models import authenticated_user
from exchange.core.errors import ServiceError
from exchange.core.uploads import too_large
from exchange.portal.forms import TraceForm
from exchange.tracing.selectors import (
    licence_served_by,
    trace_report_get_for_owner,
    trace_reports_for,
)
from exchange.tracing.services import trace_copy


def _rights_holders_only(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/forbidden.html",
                  {"reason": _("Only rights holders can trace copies of their works.")}, status=403)


@login_required
def trace(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    if not user.is_rights_holder:
        return _rights_holders_only(request)
    if request.method == "POST" and too_large(request, settings.MAX_TRACE_BYTES):
        return render(request, "portal/trace.html", {
            "form": TraceForm(), "reports": trace_reports_for(user)[:20],
            "refused": _("The file is larger than %(mib)s MiB.")
            % {"mib": settings.MAX_TRACE_BYTES // 2**20},
        }, status=413)
    form = TraceForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            report = trace_copy(owner=user, data=upload.read(settings.MAX_TRACE_BYTES + 1),
                                name=upload.name or "")
        except ServiceError as error:
            form.add_error("file", error.message)
        else:
            return redirect("portal:trace-report", report_id=report.pk)
    return render(request, "portal/trace.html", {
        "form": form, "reports": trace_reports_for(user)[:20]})


@login_required
def trace_report(request: HttpRequest, report_id: str) -> HttpResponse:
    user = authenticated_user(request)
    if not user.is_rights_holder:
        return _rights_holders_only(request)
    report = trace_report_get_for_owner(owner=user, report_id=report_id)
    if report is None:
        return render(request, "portal/not_found.html", status=404)
    licences = [
        {"licence": licence, "purchase": getattr(licence, "purchase", None),
         "served_by": licence_served_by(licence)}
        for licence in report.licences.select_related("buyer", "device", "purchase")
        .order_by("issued_at")
    ]
    return render(request, "portal/trace_report.html", {"report": report, "licences": licences})
