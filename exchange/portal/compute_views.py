"""The compute market for people: a customer's jobs (submit one, watch it, download its
results, cancel it) and a contributor's devices and earnings.

A job is submitted through the same services as the API's (``module_store``,
``job_submit``), once per form key: a double click or a resubmitted form submits one
job. Every page and download of a job goes through ``job_get_for_customer``: another
member's job is "not found", as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from babel.numbers import format_decimal
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from exchange.accounts.models import User, authenticated_user
from exchange.compute_market.archives import demo_render_png, results_archive
from exchange.compute_market.demo_jobs import demo_module, demo_render_spec
from exchange.compute_market.jobs_lifecycle import job_cancel as cancel_job
from exchange.compute_market.models import (
    ComputeJob,
    ComputePayment,
    JobState,
    UnitState,
    WorkUnit,
)
from exchange.compute_market.selectors import (
    compute_earnings_of,
    contributors_of,
    job_get_for_customer,
    job_progress,
    job_timeline,
    jobs_of,
    unit_output,
    units_of,
)
from exchange.compute_market.submission import (
    MAX_MODULE_BYTES,
    MAX_UNIT_INPUT_BYTES,
    MAX_UNITS,
    JobSpec,
    job_submit,
    module_store,
)
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.core.uploads import too_large
from exchange.ledger.models import AccountKind
from exchange.ledger.selectors import balances_of
from exchange.licensing.models import Device
from exchange.money.currencies import format_minor
from exchange.money.entry import active_locale
from exchange.portal.charts import Chart, Series, count_chart
from exchange.portal.compute_forms import (
    MAX_UNITS_FILE_BYTES,
    JobForm,
    RenderForm,
    UploadJobForm,
)

JOBS_SHOWN = 100
UNITS_PER_PAGE = 100
EARNINGS_SHOWN = 100

#: the portal's status colours (portal.css) for the job's and the units' states
JOB_STATUS: dict[str, str] = {JobState.RUNNING: "processing", JobState.COMPLETED: "succeeded",
              JobState.CANCELLED: "refunded", JobState.EXPIRED: "failed"}
UNIT_STATUS: dict[str, str] = {UnitState.PENDING: "pending", UnitState.VALIDATED: "succeeded",
               UnitState.FAILED: "failed", UnitState.CANCELLED: "refunded"}

#: the service's field names where the forms call them otherwise
_FORM_FIELDS = {"price_per_tfuel_minor": "price", "deadline": "deadline_days"}


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/not_found.html", status=404)


def _own_job(request: HttpRequest, job_id: str) -> ComputeJob | None:
    try:
        return job_get_for_customer(customer=authenticated_user(request), job_id=job_id)
    except ServiceError:
        return None


def _number(value: int) -> str:
    return str(format_decimal(value, locale=active_locale()))


# --- the customer's jobs ---------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    job: ComputeJob
    done: int
    spent_minor: int

    @property
    def status(self) -> str:
        return JOB_STATUS.get(self.job.state, "")


@login_required
@require_safe
def jobs(request: HttpRequest) -> HttpResponse:
    """The member's jobs, newest first: state, units done of all, what each cost so far."""
    user = authenticated_user(request)
    listed = list(jobs_of(user)[:JOBS_SHOWN])
    ids = [job.pk for job in listed]
    done = dict(WorkUnit.objects.filter(job__in=ids,
                                        state__in=(UnitState.VALIDATED, UnitState.FAILED))
                .values("job").annotate(n=Count("id")).values_list("job", "n"))
    spent = dict(ComputePayment.objects.filter(job__in=ids).values("job")
                 .annotate(s=Sum(F("contributors_minor") + F("fee_minor")))
                 .values_list("job", "s"))
    rows = [JobRow(job, done.get(job.pk, 0), spent.get(job.pk) or 0) for job in listed]
    return render(request, "portal/compute/jobs.html", {"rows": rows})


def _page(request: HttpRequest, template: str, form: JobForm, *, status: int = 200,
          error: str = "") -> HttpResponse:
    return render(request, template, {
        "form": form, "error": error,
        "max_units": f"{MAX_UNITS:,}", "max_unit_bytes": MAX_UNIT_INPUT_BYTES,
    }, status=status)


def _submit(request: HttpRequest, form: JobForm, template: str,
            action: Callable[[], ComputeJob]) -> HttpResponse:
    """Run a job form's submission once per form key; a refusal goes back on the form,
    with everything typed kept (the key too: the refused submission released it)."""
    user = authenticated_user(request)
    try:
        ran, job = run_once(user=user, key=form.cleaned_data["once"], action=action)
    except ServiceError as exc:
        field = _FORM_FIELDS.get(exc.field or "", exc.field)
        form.add_error(field if field in form.fields else None, exc.message)
        return _page(request, template, form, status=exc.status_code)
    if not ran or job is None:
        messages.info(request, _("This form was sent already: the job is in the list."))
        return redirect("portal:compute-jobs")
    messages.success(request, _("“%(name)s” is submitted. Its budget of %(budget)s is held "
                                "until it ends; what it does not spend comes back.")
                     % {"name": job.name,
                        "budget": format_minor(job.budget_minor, job.currency, active_locale())})
    return redirect("portal:compute-job", job_id=job.pk)


@login_required
def render_new(request: HttpRequest) -> HttpResponse:
    """The demo job: render a picture with the ray tracer, one tile per unit."""
    user = authenticated_user(request)
    template = "portal/compute/render.html"
    form = RenderForm(request.POST or None, user=user, initial={"once": form_key()})
    if request.method != "POST":
        return _page(request, template, form)
    if not form.is_valid():
        return _page(request, template, form, status=400)
    data = form.cleaned_data

    def submit() -> ComputeJob:
        spec = demo_render_spec(module=demo_module(user), width=data["width"],
                                height=data["height"], tile=data["tile"],
                                samples=data["samples"], currency=data["currency"],
                                price_per_tfuel_minor=data["price_minor"], name=data["name"],
                                replication=data["replication"])
        return job_submit(customer=user, spec=spec)

    return _submit(request, form, template, submit)


@login_required
def upload_new(request: HttpRequest) -> HttpResponse:
    """A job of the member's own: a WebAssembly module and a file of units."""
    user = authenticated_user(request)
    template = "portal/compute/upload.html"
    if request.method == "POST" and too_large(request, MAX_MODULE_BYTES + MAX_UNITS_FILE_BYTES):
        form = UploadJobForm(user=user, initial={"once": form_key()})
        return _page(request, template, form, status=413, error=_(
            "The files are larger than the limit of %(mib)s MiB together.")
            % {"mib": (MAX_MODULE_BYTES + MAX_UNITS_FILE_BYTES) // 2**20})
    form = UploadJobForm(request.POST or None, request.FILES or None, user=user,
                         initial={"once": form_key()})
    if request.method != "POST":
        return _page(request, template, form)
    if not form.is_valid():
        return _page(request, template, form, status=400)
    data = form.cleaned_data

    def submit() -> ComputeJob:
        module = module_store(user=user, wasm=data["module"])
        return job_submit(customer=user, spec=JobSpec(
            name=data["name"], module_sha256=module.sha256, units=data["unit_specs"],
            currency=data["currency"], price_per_tfuel_minor=data["price_minor"],
            replication=data["replication"], deadline=form.deadline()))

    return _submit(request, form, template, submit)


# --- one job ---------------------------------------------------------------------------


def _progress_chart(points: list[tuple[str, int]]) -> Chart:
    """Units validated over time, cumulative: a line, and the same figures as a table."""
    return count_chart(
        element_id="job-progress", caption=_("Units validated over time"),
        labels=[label for label, _count in points],
        series=[Series(name=_("Units validated"), values=[count for _label, count in points])],
        x_title=_("Time since the job started"), y_title=_("Units validated"))


@login_required
@require_safe
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _own_job(request, job_id)
    if job is None:
        return _not_found(request)
    progress = job_progress(job)
    points = job_timeline(job)
    units = Paginator(units_of(job), UNITS_PER_PAGE).get_page(request.GET.get("page"))
    render_shape = job.presentation.get("render") if isinstance(job.presentation, dict) else None
    validated = progress.units[UnitState.VALIDATED]
    return render(request, "portal/compute/job.html", {
        "job": job, "status": JOB_STATUS.get(job.state, ""), "progress": progress,
        "pending": progress.units[UnitState.PENDING], "validated": validated,
        "failed": progress.units[UnitState.FAILED],
        "cancelled": progress.units[UnitState.CANCELLED],
        "fuel_spent": _number(progress.fuel_spent),
        "chart": _progress_chart(points) if points else None,
        "units": units,
        "unit_rows": [(unit, UNIT_STATUS.get(unit.state, ""),
                       "" if unit.fuel is None else _number(unit.fuel)) for unit in units],
        "picture": render_shape if isinstance(render_shape, dict) else None,
        "picture_ready": validated == job.unit_count,
        "cancellable": job.state == JobState.RUNNING and job.cancel_requested_at is None,
    })


@login_required
@require_safe
def job_picture(request: HttpRequest, job_id: str) -> HttpResponse:
    """A finished demo job's picture, assembled from its tiles (PNG)."""
    job = _own_job(request, job_id)
    picture = demo_render_png(job) if job is not None else None
    if picture is None:
        return _not_found(request)
    response = HttpResponse(picture, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_safe
def job_results(request: HttpRequest, job_id: str) -> HttpResponse:
    """Every validated output and a manifest, as one ZIP file."""
    job = _own_job(request, job_id)
    if job is None:
        return _not_found(request)
    response = HttpResponse(results_archive(job), content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="peermark-job-{str(job.pk)[:8]}-results.zip"')
    return response


@login_required
@require_safe
def job_unit_output(request: HttpRequest, job_id: str, seq: int) -> HttpResponse:
    """One validated unit's agreed output; none until it is validated."""
    job = _own_job(request, job_id)
    data = unit_output(job, seq) if job is not None else None
    if data is None:
        return _not_found(request)
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="unit-{seq:05d}.out"'
    return response


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    """Stop the job (the service is idempotent: a second click changes nothing)."""
    job = _own_job(request, job_id)
    if job is None:
        return _not_found(request)
    job = cancel_job(customer=authenticated_user(request), job_id=job.pk)
    if job.state == JobState.RUNNING:
        messages.success(request, _("Cancelled: no new unit starts. Units already running on "
                                    "devices finish and are paid; then the rest of the budget "
                                    "comes back."))
    else:
        messages.success(request, _("The job has ended; what it did not spend is back in your "
                                    "wallet."))
    return redirect("portal:compute-job", job_id=job.pk)


# --- contributing ----------------------------------------------------------------------


@login_required
@require_safe
def contribute(request: HttpRequest) -> HttpResponse:
    """The member's contributing devices and their standing, what they earned per job,
    and the agent's commands to start."""
    user: User = authenticated_user(request)
    return render(request, "portal/compute/contribute.html", {
        "contributors": contributors_of(user),
        "earnings": compute_earnings_of(user)[:EARNINGS_SHOWN],
        "credit": [a for a in balances_of(user) if a.kind == AccountKind.COMPUTE],
        "has_device": Device.objects.filter(user=user, revoked_at__isnull=True).exists(),
        "platform_url": request.build_absolute_uri("/").rstrip("/"),
    })
