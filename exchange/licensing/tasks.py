from celery import shared_task
from django.db import OperationalError

from exchange.licensing.services import revocation_list_current


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def revocation_list_current_task() -> int:
    """Re-sign the revocation list before agents would see it expire."""
    return revocation_list_current().version
