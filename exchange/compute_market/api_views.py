"""The compute market's API: customers submit and follow jobs; contributors' agents opt
in, take units in batches and return signed results in batches."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Q
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.compute_market import contributors, dispatch, intake, jobs_lifecycle, selectors
from exchange.compute_market.archives import results_archive
from exchange.compute_market.models import Assignment, ComputeJob, ComputeModule
from exchange.compute_market.serializers import (
    ContributorIn,
    ContributorOut,
    DispatchIn,
    DispatchOut,
    JobDetailOut,
    JobIn,
    JobOut,
    ModuleIn,
    ModuleOut,
    ResultsIn,
    ResultsOut,
    UnitOut,
    b64,
    results_in,
)
from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
from exchange.core.errors import ServiceError
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.core.uploads import upload_limit

#: how long an agent waits before asking again when there was no work
IDLE_RETRY_SECONDS = 15


class ModuleCreateView(APIView):
    """Upload a module; it is checked (format, size, imports) before it is kept, and kept
    once per content (the same bytes again give the same answer)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema(request=ModuleIn, responses={201: ModuleOut, **errors(413)})
    @upload_limit("COMPUTE_MAX_MODULE_BYTES")
    def post(self, request: Request) -> Response:
        data = ModuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["module"]
        module = module_store(user=authenticated_user(request), wasm=upload.read())
        return Response(ModuleOut(module).data, status=status.HTTP_201_CREATED)


class ModuleDetailView(APIView):
    """A module's bytes, for its uploader, customers with a job on it, and devices given
    one of its units."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/wasm"): bytes, **errors(404)})
    def get(self, request: Request, sha256: str) -> HttpResponse:
        user = authenticated_user(request)
        wasm = ComputeModule.objects.filter(pk=sha256).filter(
            Q(uploaded_by=user) | Q(jobs__customer=user)
            | Q(jobs__in=Assignment.objects.filter(user=user).values("job_id"))
        ).values_list("wasm", flat=True).first()
        if wasm is None:
            raise ServiceError(_("No such module."), code="not_found", status_code=404)
        response = HttpResponse(bytes(wasm), content_type="application/wasm")
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


class JobListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(JobOut), operation_id="compute_jobs_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        return paginated_response(request, self, selectors.jobs_of(authenticated_user(request)),
                                  JobOut)

    @extend_schema(request=JobIn, responses={201: JobDetailOut, **errors(402, 404, 409, 413)})
    @upload_limit("COMPUTE_MAX_JOB_BODY_BYTES")
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        data = JobIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        spec = JobSpec(
            name=fields["name"], module_sha256=fields["module"], currency=fields["currency"],
            price_per_tfuel_minor=fields["price_per_tfuel_minor"],
            replication=fields["replication"], deadline=fields["deadline"],
            unit_seconds=fields["unit_seconds"], memory_bytes=fields["memory_bytes"],
            output_bytes=fields["output_bytes"], args=tuple(fields["args"]),
            units=[UnitSpec(input=u["input"], fuel=u["fuel"], label=u["label"])
                   for u in fields["units"]])
        job = job_submit(customer=authenticated_user(request), spec=spec)
        return Response(_detail(job), status=status.HTTP_201_CREATED)


def _detail(job: ComputeJob) -> dict[str, Any]:
    return dict(JobDetailOut(job, context={"progress": selectors.job_progress(job)}).data)


class JobDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: JobDetailOut, **errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get_for_customer(customer=authenticated_user(request), job_id=job_id)
        return Response(_detail(job))


class JobCancelView(APIView):
    """Cancel: units no device has started are cancelled and their budget returns; the
    running ones finish and are paid. Cancelling again changes nothing."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: JobDetailOut, **errors(404)})
    def post(self, request: Request, job_id: str) -> Response:
        customer = authenticated_user(request)
        job = selectors.job_get_for_customer(customer=customer, job_id=job_id)
        return Response(_detail(jobs_lifecycle.job_cancel(customer=customer, job_id=job.pk)))


class JobUnitsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=page_of(UnitOut), operation_id="compute_units_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get_for_customer(customer=authenticated_user(request), job_id=job_id)
        return paginated_response(request, self, selectors.units_of(job), UnitOut)


class UnitOutputView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/octet-stream"): bytes, **errors(404)})
    def get(self, request: Request, job_id: str, seq: int) -> HttpResponse:
        job = selectors.job_get_for_customer(customer=authenticated_user(request), job_id=job_id)
        output = selectors.unit_output(job, seq)
        if output is None:
            raise ServiceError(_("This unit has no validated output (yet)."), code="not_found",
                               status_code=404)
        response = HttpResponse(output, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="unit-{seq:05d}.out"'
        return response


class JobResultsArchiveView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/zip"): bytes, **errors(404)})
    def get(self, request: Request, job_id: str) -> HttpResponse:
        job = selectors.job_get_for_customer(customer=authenticated_user(request), job_id=job_id)
        response = HttpResponse(results_archive(job), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="results-{job.pk}.zip"'
        return response


class ContributorListCreateView(APIView):
    """Opt a device in to contribute (or change its limits: the same call again)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(ContributorOut), operation_id="compute_contributors_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        return paginated_response(request, self,
                                  selectors.contributors_of(authenticated_user(request)),
                                  ContributorOut)

    @extend_schema(request=ContributorIn, responses={200: ContributorOut, **errors(403, 409)})
    def post(self, request: Request) -> Response:
        data = ContributorIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        contributor = contributors.contributor_enroll(
            user=authenticated_user(request), device_id=fields["device"],
            runtime=fields["runtime"], cores=fields["cores"],
            memory_bytes=fields["memory_bytes"], hours_per_day=fields["hours_per_day"],
            only_when_idle=fields["only_when_idle"], agent_version=fields["agent_version"])
        return Response(ContributorOut(contributor).data)


class DispatchView(APIView):
    """Units for one device, in a batch. With an Idempotency-Key, a retry after a lost
    answer gets the same units again rather than new ones."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=DispatchIn, responses={200: DispatchOut, **errors(403, 409)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        data = DispatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        given = dispatch.units_give(user=authenticated_user(request),
                                    device_id=data.validated_data["device"],
                                    max_units=data.validated_data["max_units"])
        body = {
            "assignments": [{
                "assignment": g.assignment, "job": str(g.job.pk), "unit": str(g.seq),
                "module": g.job.module_id, "module_size": g.job.module.size,
                "args": list(g.job.args), "input": b64(g.input),
                "fuel": g.fuel_cap, "memory_bytes": g.job.memory_bytes,
                "output_bytes": g.job.output_bytes, "runtime": g.job.runtime,
                "deadline": g.deadline.isoformat().replace("+00:00", "Z"),
            } for g in given],
            "retry_after": 0 if given else IDLE_RETRY_SECONDS,
        }
        return Response(body)


class ResultsView(APIView):
    """Signed results in a batch; each gets its own answer. The same result again is
    answered ``duplicate``: a lost answer can be retried safely."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=ResultsIn, responses={200: ResultsOut, **errors(403, 413)})
    @upload_limit("COMPUTE_MAX_RESULTS_BODY_BYTES")
    def post(self, request: Request) -> Response:
        fields = results_in(request.data)
        items = [intake.ResultItem(assignment=r["assignment"], token=r["token"],
                                   output=r["output"])
                 for r in fields["results"]]
        outcomes = intake.results_submit(user=authenticated_user(request),
                                         device_id=fields["device"], items=items)
        counts = Counter(o.status.value for o in outcomes)
        return Response({
            "accepted": counts["accepted"], "duplicate": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": [{"index": o.index, "assignment": o.assignment, "status": o.status.value,
                         "reason": o.reason, "message": o.message} for o in outcomes],
        })
