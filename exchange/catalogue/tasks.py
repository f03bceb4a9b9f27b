"""Thin tasks: take an id, call a service, retry only what is transient."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from exchange.catalogue.services import work_mark_failed, work_process


@shared_task(
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def work_process_task(self: object, work_id: str) -> str:
    try:
        return work_process(work_id=work_id).status
    except OperationalError:
        raise
    except (OSError, ValueError) as exc:
        work_mark_failed(work_id=work_id, reason=f"processing failed: {exc}")
        raise
