"""Thin tasks: take an id, call a service, retry only what is transient."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from exchange.catalogue.services import work_mark_failed, work_process
from licensing.core.errors import LicensingError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def work_process_task(work_id: str) -> str:
    """Package a newly registered work; a database hiccup retries, a bad file fails the work.

    A permanent failure is recorded on the work (the rights holder sees why) rather than
    raised: in the embedded default the task runs inside the upload request, which must
    not turn into a server error after the work was safely stored.
    """
    try:
        return work_process(work_id=work_id).status
    except OperationalError:
        raise
    except (OSError, ValueError, LicensingError) as exc:
        work_mark_failed(work_id=work_id, reason=f"processing failed: {exc}")
        return "failed"
