from celery import shared_task
from django.db import OperationalError

from exchange.purchases.services import purchases_refund_overdue


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def purchases_refund_overdue_task() -> int:
    return purchases_refund_overdue()
