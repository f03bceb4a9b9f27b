"""Fixtures every test folder shares: the personas, API clients, and the CI guard.

The personas are the same people as the demo: Rita holds rights and sells, Bob and
Carol buy, and an admin runs the platform.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from exchange.accounts.models import Role, User
from exchange.accounts.services import api_token_create

PASSWORD = "correct horse battery staple"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str) -> None:
    """A test that needs a service must run in CI: there, its skip is a failure."""
    if _in_ci():
        pytest.fail(f"CI=true but this test would be skipped: {reason}", pytrace=False)
    pytest.skip(reason)


def _on_postgres() -> bool:
    from django.conf import settings

    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _redis_reachable() -> bool:
    from django.conf import settings

    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and not _on_postgres():
        _skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis") and not _redis_reachable():
        _skip_or_fail("needs Redis: set REDIS_URL=redis://... to a running server")


@pytest.fixture(autouse=True, scope="session")
def _celery_in_process() -> None:
    """In-process tests run tasks eagerly; the real-worker tests start their own worker."""
    from exchange.celery import app

    # The CELERY_-prefixed names, as settings.py gives them: Celery 5.6 reads those first,
    # so a change under the short name would be ignored where REDIS_URL is set.
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture(autouse=True, scope="session")
def _peer_index_in_database() -> None:
    """Peers and holdings in the database for data built once per session or module too
    (the per-test ``_private_data_dir`` says the same for each test); the ``live_index``
    fixture switches a test to Redis."""
    from django.conf import settings

    settings.PEER_INDEX = "database"


@pytest.fixture(autouse=True)
def _no_handler_left_on_a_closed_stream() -> Iterator[None]:
    """A logging handler made while a test captured stderr (an agent command run in
    process configures logging) writes to that capture after it is closed: a later test's
    server thread then prints "--- Logging error ---" into the stderr that test reads.
    Such handlers go when the test that made them ends (set up first, torn down last:
    after the capture closed)."""
    yield
    import logging

    loggers = [logging.getLogger(), *(logger for logger in logging.root.manager.loggerDict
                                      .values() if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in list(logger.handlers):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """A request in Korean leaves Korean active in this thread (Django's LocaleMiddleware
    activates the request's language): the next test starts in the default again."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _private_data_dir(settings: Any, tmp_path: Path) -> None:
    """Every test writes masters and previews into its own folder."""
    data = tmp_path / "data"
    # The same layout as settings.py makes, so a subprocess given PEERMARK_DATA_DIR=data
    # (a real Celery worker, a server) finds the same files.
    for name, folder in (("MASTERS_DIR", "masters"), ("PREVIEWS_DIR", "previews"),
                         ("CIPHERTEXT_DIR", "ciphertext"), ("UPLOAD_TMP_DIR", "tmp")):
        (data / folder).mkdir(parents=True)
        setattr(settings, name, data / folder)
    settings.DATA_DIR = data
    settings.FILE_UPLOAD_TEMP_DIR = str(data / "tmp")
    from exchange.licensing.keys import keyring_clear_cache

    keyring_clear_cache()  # keys live in each test's own database
    # The test payment provider, off by default, is on in the tests (as in the demo).
    settings.TEST_PAYMENTS = True
    settings.PAYMENTS_PROVIDER = "testpay"
    settings.TESTPAY_DELIVERY = "inprocess"
    settings.TESTPAY_WEBHOOK_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tzLTAxMjM0NTY="
    # Peers and holdings in the database, unless a test asks for the live index in Redis
    # (the ``live_index`` fixture): tests in one worker share one Redis database.
    settings.PEER_INDEX = "database"
    # Real password hashing is slow by design; the tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _person(username: str, role: str, **extra: Any) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@example.test", password=PASSWORD, role=role, **extra
    )


@pytest.fixture
def rita(db: None) -> User:
    """A rights holder who sells works."""
    return _person("rita", Role.RIGHTS_HOLDER)


@pytest.fixture
def rob(db: None) -> User:
    """A second rights holder, to try crossing into Rita's works."""
    return _person("rob", Role.RIGHTS_HOLDER)


@pytest.fixture
def bob(db: None) -> User:
    """A buyer."""
    return _person("bob", Role.BUYER)


@pytest.fixture
def carol(db: None) -> User:
    """Another buyer."""
    return _person("carol", Role.BUYER)


@pytest.fixture
def admin_user(db: None) -> User:
    """The platform admin."""
    return _person("admin", Role.ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def api() -> Callable[[User | None], Any]:
    """An API client authenticated as ``user`` with a real bearer token (None: anonymous)."""
    from rest_framework.test import APIClient

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            raw = api_token_create(user=user, name="test").raw
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def png_bytes(width: int = 320, height: int = 240, *, seed: int = 1) -> bytes:
    """A small, valid, textured PNG."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def png() -> bytes:
    return png_bytes()


@pytest.fixture
def make_work(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Register a work through the service, as the portal and API do; ready unless told.

    Delivered "marked" unless ``delivery_mode`` says otherwise (None: the service's
    default, sealed for images): most tests are about the agent's marking.
    """
    from exchange.catalogue.services import work_register

    def make(
        owner: User,
        *,
        title: str = "Harbour at dawn",
        data: bytes | None = None,
        price_minor: int = 1250,
        currency: str = "EUR",
        ready: bool = True,
        **terms: Any,
    ) -> Any:
        body = data if data is not None else png_bytes()
        with django_capture_on_commit_callbacks(execute=ready):
            work = work_register(
                owner=owner,
                title=title,
                description=terms.pop("description", "A quiet harbour."),
                upload=io.BytesIO(body),
                upload_size=len(body),
                original_filename="harbour.png",
                price_minor=price_minor,
                currency=currency,
                allowed_uses=terms.pop("allowed_uses", ["view", "download"]),
                licence_days=terms.pop("licence_days", 365),
                byte_allowance_multiple=terms.pop("byte_allowance_multiple", 2),
                delivery_mode=terms.pop("delivery_mode", "marked"),
            )
        work.refresh_from_db()
        return work

    return make


@pytest.fixture
def fund(django_capture_on_commit_callbacks: Any) -> Callable[..., None]:
    """Top up a wallet the real way: the provider's signed webhook credits it."""
    from exchange.payments.services import topup_create

    def make(user: User, amount_minor: int, currency: str = "EUR") -> None:
        with django_capture_on_commit_callbacks(execute=True):
            topup_create(user=user, amount_minor=amount_minor, currency=currency)

    return make


@pytest.fixture
def device_of() -> Callable[..., Any]:
    """Make device keys (as the agent's ``init`` does) and register their public halves."""
    from exchange.licensing.services import device_register
    from licensing.core.device import DeviceKeys

    def make(user: User, name: str = "laptop") -> tuple[DeviceKeys, Any]:
        keys = DeviceKeys.generate()
        public = keys.public.to_b64url()
        device = device_register(user=user, name=name, signing_key=public["sig"],
                                 kem_key=public["kem"])
        return keys, device

    return make


def index_redis_url() -> str:
    """The Redis database the in-process index tests empty and fill: the worker's own
    (REDIS_URL) plus 8, so that no test here ever empties the index keys of a platform an
    end-to-end test of the same worker runs on the worker's own database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(os.environ.get("REDIS_URL", ""))
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 8) % 16}"))


@pytest.fixture
def live_index(settings: Any) -> Iterator[Any]:
    """The live peer index in Redis (as where REDIS_URL is set), emptied before and after:
    the platform's own peer endpoints then store in Redis as the fast path does."""
    if not _redis_reachable():
        _skip_or_fail("needs Redis: set REDIS_URL=redis://... to a running server")
    import redis

    settings.REDIS_URL = index_redis_url()
    conn = redis.Redis.from_url(settings.REDIS_URL)

    def empty() -> None:
        keys = list(conn.scan_iter(match="pmi:*", count=1000))
        if keys:
            conn.delete(*keys)

    empty()
    settings.PEER_INDEX = "redis"
    yield conn
    empty()
