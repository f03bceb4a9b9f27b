from celery import shared_task

from exchange.api.idempotency import idempotency_records_purge


@shared_task
def purge_idempotency_keys() -> int:
    return idempotency_records_purge()
