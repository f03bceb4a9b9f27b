"""Thin tasks over the tracing services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from exchange.tracing.marking_checks import receipts_marking_check_sample


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def receipts_marking_check_sample_task() -> int:
    return receipts_marking_check_sample()
