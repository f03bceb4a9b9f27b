"""The Celery application. Without a broker it runs tasks eagerly (embedded default)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

app = Celery("exchange")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _provider_task_packages() -> list[str]:
    """Packages outside the apps with a ``tasks`` module: the test payment provider's,
    only where it may be used (``PEERMARK_TEST_PAYMENTS``)."""
    from django.conf import settings

    return ["exchange.payments.providers.testpay"] if settings.TEST_PAYMENTS else []


app.autodiscover_tasks()
app.autodiscover_tasks(_provider_task_packages)
