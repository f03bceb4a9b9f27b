"""Thin tasks over the metering services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from redis import RedisError

from exchange.metering.services import metering_flush, receipt_settle, receipts_settle_due


@shared_task(autoretry_for=(OperationalError, RedisError), retry_backoff=True, max_retries=8)
def metering_flush_task() -> int:
    return metering_flush()


@shared_task(autoretry_for=(OperationalError, RedisError), retry_backoff=True, max_retries=8)
def receipt_settle_task(receipt_pk: int) -> bool:
    return receipt_settle(receipt_pk=receipt_pk)


@shared_task(autoretry_for=(OperationalError, RedisError), retry_backoff=True, max_retries=5)
def receipts_settle_due_task() -> int:
    return receipts_settle_due()
