"""A real Celery worker on Redis packages a registered work (eager mode is not proof)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from exchange.catalogue.models import Work, WorkStatus
from exchange.catalogue.services import work_register
from exchange.celery import app
from tests.conftest import png_bytes
from tests.support.processes import python, running, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


def test_a_registered_work_is_packaged_by_a_real_worker(rita, settings, tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": django_settings.REDIS_URL,
        "PEERMARK_DATA_DIR": str(settings.DATA_DIR),
        "PEERMARK_CELERY_EAGER": "false",
    }
    log = tmp_path / "worker.log"
    worker = python("-m", "celery", "-A", "exchange", "worker", "-Q", queue, "--pool", "solo",
                    "--concurrency", "1", "--loglevel", "INFO", "--without-heartbeat",
                    "--without-gossip", "--without-mingle")
    previous = (app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.task_default_queue)
    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_default_queue = queue
    try:
        with running(worker, env=env, log=log):
            data = png_bytes()
            work = work_register(
                owner=rita, title="Queued", description="", upload=io.BytesIO(data),
                upload_size=len(data), original_filename="q.png", price_minor=100,
                currency="EUR", allowed_uses=["view"], licence_days=1, byte_allowance_multiple=2,
            )
            wait_until(
                lambda: Work.objects.get(pk=work.pk).status == WorkStatus.READY,
                timeout=60, what="the worker to package the work", log=log,
            )
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.task_default_queue = previous
    assert "succeeded" in log.read_text()
