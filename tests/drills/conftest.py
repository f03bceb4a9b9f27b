"""The fault drills share one platform (gunicorn, a Celery worker and beat) on a
PostgreSQL and a Redis of its own, which the drills kill and restart; each drill starts
by bringing back anything an earlier one left down, and ends with the books checked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _skip_or_fail
from tests.support.drills import Drill
from tests.support.platform import platform
from tests.support.services import missing_tools, private_postgres, private_redis

# A receipt settles this long after it arrives: long enough for serving agents (which
# submit their orders every 5 s) to be heard after an outage of a few seconds.
GRACE_SECONDS = 12


@pytest.fixture(scope="package")
def drill_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    reason = missing_tools()
    if reason:
        _skip_or_fail(reason)
    with private_postgres() as postgres, private_redis() as redis, platform(
        tmp_path_factory.mktemp("drills"), celery=True, database_url=postgres.url,
        redis_url=redis.url,
        extra_env={"PEERMARK_METERING_GRACE_SECONDS": str(GRACE_SECONDS)},
    ) as site:
        yield Drill(site=site, postgres=postgres, redis=redis)


@pytest.fixture
def drill(drill_platform: Drill) -> Drill:
    drill_platform.settle_processes()
    return drill_platform

