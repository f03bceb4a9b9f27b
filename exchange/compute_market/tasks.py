"""The compute market's periodic work (Celery beat; ``run_periodic_jobs`` in the demo)."""

from __future__ import annotations

from celery import shared_task

from exchange.compute_market.dispatch import assignments_reclaim_overdue
from exchange.compute_market.jobs_lifecycle import jobs_expire_due, jobs_finish_done


@shared_task
def compute_reclaim_overdue_task() -> int:
    return assignments_reclaim_overdue()


@shared_task
def compute_jobs_close_task() -> int:
    return jobs_expire_due() + jobs_finish_done()
