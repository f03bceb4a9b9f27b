"""Peermark settings: everything from the environment, with a safe embedded default.

Without any variable set, the platform runs on SQLite under ``PEERMARK_DATA_DIR``
(default ``./data``), runs Celery tasks in-process, and generates its secret key
into the data folder. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
Redis (broker, cache and the metering hot path). See docs/OPERATIONS.md.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from exchange.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    secret_in_data_dir,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PEERMARK_DATA_DIR") or BASE_DIR / "data").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("PEERMARK_DEBUG", default=False)
SECRET_KEY = env_str("PEERMARK_SECRET_KEY") or secret_in_data_dir(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("PEERMARK_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("PEERMARK_CSRF_TRUSTED_ORIGINS", default=[])
# The public base URL is what the platform prints and puts in links for agents.
PUBLIC_URL = env_str("PEERMARK_PUBLIC_URL", "http://127.0.0.1:8000") or ""

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "exchange.accounts",
    "exchange.audit",
    "exchange.core",
    "exchange.catalogue",
    "exchange.ledger",
    "exchange.payments",
    "exchange.purchases",
    "exchange.metering",
    "exchange.operations",
    "exchange.tracing",
    "exchange.portal",
    "exchange.licensing",
    "exchange.peers",
    "exchange.compute_market",
    "exchange.community",
    "exchange.reviews",
    "exchange.messaging",
    "exchange.rooms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (it reads the chosen language there), before common (which may
    # redirect): the portal speaks the visitor's language, English or Korean.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees a view's exception first: a service outage is a 503.
    "exchange.core.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = "exchange.wsgi.application"
ASGI_APPLICATION = "exchange.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # the nav's unread badges (lazy: no query on a page that shows none)
                "exchange.community.context_processors.unread_notifications",
                "exchange.messaging.context_processors.unread_messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Persistent connections are checked before each request reuses them, so that one
    # broken by a database restart is replaced instead of failing the request.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60,
                                                  conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Parameters are bound on the server (Django's documented psycopg option), so a
        # statement's text is the same for every call and psycopg prepares it on its nth
        # use per connection: the server then parses and plans each of a sale's
        # statements once, not on every sale. 0 turns preparing off (a pooler that
        # cannot keep prepared statements, such as PgBouncer before 1.21 in
        # transaction mode); binding stays on the server.
        _prepare = env_int("PEERMARK_DB_PREPARE_THRESHOLD", default=5, minimum=0)
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=_prepare or None)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "peermark.sqlite3"),
            "OPTIONS": {
                # IMMEDIATE makes writers queue for the lock up front instead of failing
                # mid-transaction; WAL lets readers run beside the one writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis and Celery ---------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
_BROKER = env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env_bool("PEERMARK_CELERY_EAGER", default=not _BROKER)
# Without a broker every task runs eagerly; the in-memory transport only keeps Celery
# from looking for one on localhost.
CELERY_BROKER_URL = _BROKER or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every periodic job is also a management command (docs/OPERATIONS.md).
CELERY_BEAT_SCHEDULE = {
    "refund-overdue-purchases": {
        "task": "exchange.purchases.tasks.purchases_refund_overdue_task", "schedule": 300.0,
    },
    "refresh-revocation-list": {
        "task": "exchange.licensing.tasks.revocation_list_current_task", "schedule": 3600.0,
    },
    "flush-metering": {"task": "exchange.metering.tasks.metering_flush_task", "schedule": 5.0},
    "flush-peer-index": {"task": "exchange.peers.tasks.peer_index_flush_task", "schedule": 2.0},
    "sync-peer-index": {"task": "exchange.peers.tasks.peer_index_sync_task", "schedule": 60.0},
    "settle-due-receipts": {
        "task": "exchange.metering.tasks.receipts_settle_due_task", "schedule": 10.0,
    },
    "purge-idempotency-keys": {
        "task": "exchange.core.tasks.idempotency_records_purge_task", "schedule": 3600.0,
    },
    "reclaim-overdue-compute-units": {
        "task": "exchange.compute_market.tasks.compute_reclaim_overdue_task", "schedule": 5.0,
    },
    "close-compute-jobs": {
        "task": "exchange.compute_market.tasks.compute_jobs_close_task", "schedule": 60.0,
    },
    "check-receipt-marking": {
        "task": "exchange.tracing.tasks.receipts_marking_check_sample_task", "schedule": 300.0,
    },
}

# --- Chat rooms (WebSockets, Django Channels) ---------------------------------------
# With Redis, every ASGI process shares one channel layer, so a room's messages reach
# sockets held by any process. Without it (the embedded demo) the in-memory layer works
# only within one process: the demo serves ASGI with one uvicorn process (scripts/run).
# The Pub/Sub layer publishes a line once per room and each process hands it to its own
# sockets; channels_redis's list-based layer pushes one copy per socket and drops past a
# per-socket capacity, which lost most lines at 500 sockets (docs/BENCHMARKS.md). A line
# missed live (at most once) is in the stored history.
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                  "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Per member, across every room and process (exchange/core/rate_limits.py notation).
ROOMS_SAY_RATE = env_str("PEERMARK_ROOMS_SAY_RATE", "20/min") or "20/min"
# Per socket: frames of any kind; more is a flood (an error frame and a strike).
ROOMS_FRAME_RATE = env_str("PEERMARK_ROOMS_FRAME_RATE", "10/5s") or "10/5s"
ROOMS_MAX_CHARS = env_int("PEERMARK_ROOMS_MAX_CHARS", default=1000, minimum=1)
# A frame longer than this is refused before it is parsed.
ROOMS_MAX_FRAME_BYTES = env_int("PEERMARK_ROOMS_MAX_FRAME_BYTES", default=8192, minimum=256)
# Abusive frames (malformed, oversized, unknown, too fast) a socket may send before it
# is closed with code 4429.
ROOMS_MAX_STRIKES = env_int("PEERMARK_ROOMS_MAX_STRIKES", default=5, minimum=1)
ROOMS_HISTORY_ON_JOIN = env_int("PEERMARK_ROOMS_HISTORY_ON_JOIN", default=50, minimum=0)

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Files --------------------------------------------------------------------
# Masters live under the data folder, outside anything the web server serves.
MASTERS_DIR = DATA_DIR / "masters"
PREVIEWS_DIR = DATA_DIR / "previews"
# Encrypted pieces: what seed agents serve. Safe to expose to peers; useless without a licence.
CIPHERTEXT_DIR = DATA_DIR / "ciphertext"
UPLOAD_TMP_DIR = DATA_DIR / "tmp"
STATIC_ROOT = DATA_DIR / "static"
for _path in (MASTERS_DIR, PREVIEWS_DIR, CIPHERTEXT_DIR, UPLOAD_TMP_DIR, STATIC_ROOT):
    _path.mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(UPLOAD_TMP_DIR)
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
MAX_UPLOAD_BYTES = env_int("PEERMARK_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024, minimum=1)
# A suspect copy is read into memory to be traced.
MAX_TRACE_BYTES = env_int("PEERMARK_MAX_TRACE_BYTES", default=64 * 1024 * 1024, minimum=1)
TRACES_PER_HOUR = env_int("PEERMARK_TRACES_PER_HOUR", default=60, minimum=1)
# Receipts whose delivered copy the platform recomputes, per run of the periodic check.
MARKING_CHECKS_PER_RUN = env_int("PEERMARK_MARKING_CHECKS_PER_RUN", default=10, minimum=0)
# Uploads stream to disk; only the form fields are bounded in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Largest price accepted, in major units of any currency: guards against typos
# that add zeros, not against legitimately expensive works.
MAX_PRICE_MAJOR = env_int("PEERMARK_MAX_PRICE_MAJOR", default=1_000_000, minimum=1)

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "exchange" / "portal" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Auth and security --------------------------------------------------------
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("PEERMARK_HTTPS", default=False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "한국어")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exchange.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "exchange.core.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "exchange.core.openapi.ApiSchema",
    "EXCEPTION_HANDLER": "exchange.core.errors.api_exception_handler",
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {"login": env_str("PEERMARK_LOGIN_RATE", "20/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Peermark API",
    "DESCRIPTION": "The public REST API of the Peermark exchange. See docs/API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.catalogue.schema.close_public_work",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PayoutSourceEnum": "exchange.payments.models.PayoutSource",
        "OrderOutcomeEnum": "exchange.metering.serializers.ORDER_OUTCOMES",
        "WorkStatusEnum": "exchange.catalogue.models.WorkStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PEERMARK_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per task run is noise when tasks run in-process (the embedded default).
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}
# --- Licensing ------------------------------------------------------------------
# Piece size: a power of two. 1 MiB pieces moved about 30% faster than 256 KiB over HTTP
# on the reference machine (docs/BENCHMARKS.md).
PIECE_SIZE = env_int("PEERMARK_PIECE_SIZE", default=1024 * 1024, minimum=16 * 1024)
if PIECE_SIZE & (PIECE_SIZE - 1):
    raise ImproperlyConfigured("PEERMARK_PIECE_SIZE must be a power of two")
JWKS_MAX_AGE = env_int("PEERMARK_JWKS_MAX_AGE", default=300, minimum=0)
MANIFEST_TOKEN_SECONDS = env_int("PEERMARK_MANIFEST_TOKEN_SECONDS", default=7 * 86400, minimum=60)
REVOCATION_LIST_SECONDS = env_int("PEERMARK_REVOCATION_LIST_SECONDS", default=86400, minimum=60)
# One library on every device: re-issues and moves per member (each signs a licence, a move
# also a revocation list every agent downloads), and moves per purchase in 30 days (a lost
# device is rare; a loop of moves would grow the revocation list without end).
LIBRARY_RATE = env_str("PEERMARK_LIBRARY_RATE", "10/hour") or "10/hour"
LIBRARY_MOVES_PER_30_DAYS = env_int("PEERMARK_LIBRARY_MOVES_PER_30_DAYS", default=5, minimum=1)

# --- Peers ----------------------------------------------------------------------
# A peer silent for longer is offline (agents heartbeat every 30 s).
PEER_TIMEOUT_SECONDS = env_int("PEERMARK_PEER_TIMEOUT_SECONDS", default=90, minimum=5)
# Off: a peer's announced host must be the address it connects from, so nobody can
# point buyers' agents at a third party. On: behind NAT or a proxy you know.
PEERS_ALLOW_ANNOUNCED_HOST = env_bool("PEERMARK_PEERS_ALLOW_ANNOUNCED_HOST", default=False)
# Where live peers and holdings are kept: "redis" (the live index the fast path serves,
# PostgreSQL its durable record written in batches) or "database" (the embedded default,
# with no Redis). docs/INDEX.md.
PEER_INDEX = env_str("PEERMARK_PEER_INDEX") or ("redis" if REDIS_URL else "database")
if PEER_INDEX not in ("redis", "database"):
    raise ImproperlyConfigured("PEERMARK_PEER_INDEX is redis or database")
if PEER_INDEX == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("PEERMARK_PEER_INDEX=redis needs REDIS_URL")
# The index fast path (python -m peerindex) as agents reach it; empty: not offered, and
# agents use the API above. Its credentials are signed with PEERMARK_INDEX_SECRET (hex, 32
# bytes or more, shared with the index service), or a key derived from the secret key.
INDEX_URL = env_str("PEERMARK_INDEX_URL") or ""
INDEX_SECRET = env_str("PEERMARK_INDEX_SECRET") or ""
# During a rotation, the key before it: credentials it signed are still honoured by the
# index (given the same variable) until they expire, so logging out must revoke them too.
INDEX_PREVIOUS_SECRET = env_str("PEERMARK_INDEX_PREVIOUS_SECRET") or ""
for _name, _value in (("PEERMARK_INDEX_SECRET", INDEX_SECRET),
                      ("PEERMARK_INDEX_PREVIOUS_SECRET", INDEX_PREVIOUS_SECRET)):
    if _value:
        try:
            if len(bytes.fromhex(_value)) < 32:
                raise ValueError
        except ValueError:
            raise ImproperlyConfigured(f"{_name} is hex, 32 bytes or more") from None
INDEX_CREDENTIAL_SECONDS = env_int("PEERMARK_INDEX_CREDENTIAL_SECONDS", default=3600,
                                   minimum=60)
# credentials minted per device (an agent asks at half-life; past this, it uses the API)
INDEX_CREDENTIAL_RATE = (env_str("PEERMARK_INDEX_CREDENTIAL_RATE", "30/hour")
                         or "30/hour")

# --- Email (notifications) ------------------------------------------------------
# With PEERMARK_EMAIL_HOST set, mail goes out over SMTP; without it (the embedded demo),
# the console backend prints each email to the server's output. PEERMARK_EMAIL_BACKEND
# overrides either (the tests use Django's locmem backend).
EMAIL_HOST = env_str("PEERMARK_EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("PEERMARK_EMAIL_PORT", default=587, minimum=1)
EMAIL_HOST_USER = env_str("PEERMARK_EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_str("PEERMARK_EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("PEERMARK_EMAIL_USE_TLS", default=True)
EMAIL_USE_SSL = env_bool("PEERMARK_EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("PEERMARK_EMAIL_USE_TLS and PEERMARK_EMAIL_USE_SSL: one, not both")
EMAIL_TIMEOUT = env_int("PEERMARK_EMAIL_TIMEOUT", default=10, minimum=1)
EMAIL_BACKEND = env_str("PEERMARK_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if env_str("PEERMARK_EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("PEERMARK_DEFAULT_FROM_EMAIL", "Peermark <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Community (follows, wishlists, profiles) -------------------------------------
COMMUNITY_MAX_SAVED_SEARCHES = env_int("PEERMARK_MAX_SAVED_SEARCHES", default=20, minimum=1)
COMMUNITY_FOLLOW_RATE = env_str("PEERMARK_FOLLOW_RATE", "60/hour") or "60/hour"
COMMUNITY_SAVED_SEARCH_RATE = env_str("PEERMARK_SAVED_SEARCH_RATE", "30/hour") or "30/hour"
COMMUNITY_PROFILE_RATE = env_str("PEERMARK_PROFILE_RATE", "30/hour") or "30/hour"

# --- Money ----------------------------------------------------------------------
# The built-in test provider (exchange/payments/providers/testpay/) confirms whatever it
# is asked to and moves no real money, so it is off unless turned on: scripts/run (the
# embedded demo) and the tests do. On, it is the default provider; off, nothing falls
# back to it, and naming it as the provider stops the process at start-up.
TEST_PAYMENTS = env_bool("PEERMARK_TEST_PAYMENTS", default=False)
PAYMENTS_PROVIDER = env_str("PEERMARK_PAYMENTS_PROVIDER") or ("testpay" if TEST_PAYMENTS else "")
if PAYMENTS_PROVIDER == "testpay" and not TEST_PAYMENTS:
    raise ImproperlyConfigured(
        "PEERMARK_PAYMENTS_PROVIDER=testpay needs PEERMARK_TEST_PAYMENTS=true: "
        "the test payment provider moves no real money"
    )
# Where the test provider delivers its webhooks over HTTP (with workers).
PAYMENTS_WEBHOOK_URL = env_str(
    "PEERMARK_PAYMENTS_WEBHOOK_URL", f"{PUBLIC_URL}/api/v1/payments/webhooks/testpay/"
)
TESTPAY_WEBHOOK_SECRET = env_str("PEERMARK_TESTPAY_WEBHOOK_SECRET")
# How the test provider's webhooks reach us: over HTTP when a worker sends them, or
# straight into the handler in the embedded default (one process, nobody to send them).
TESTPAY_DELIVERY = env_choice(
    "PEERMARK_TESTPAY_DELIVERY",
    choices=("inprocess", "http"),
    default="inprocess" if CELERY_TASK_ALWAYS_EAGER else "http",
)
TESTPAY_DELAY_SECONDS = env_int("PEERMARK_TESTPAY_DELAY_SECONDS", default=1, minimum=0)
MAX_TOPUP_MAJOR = env_int("PEERMARK_MAX_TOPUP_MAJOR", default=10_000, minimum=1)
# Limits set in major units (price, top-up, payout floor) are multiplied by these in
# currencies whose major unit is worth far less (exchange/money/limits.py).
MONEY_LIMIT_SCALES: dict[str, int] = {}
for _pair in env_list("PEERMARK_MONEY_LIMIT_SCALES",
                      default=["KRW=1000", "JPY=100", "IDR=10000", "VND=10000"]):
    _code, _sep, _scale = _pair.partition("=")
    if not (_sep and _code.strip().isalpha() and _scale.strip().isdigit()
            and int(_scale) > 0):
        raise ImproperlyConfigured(
            f"PEERMARK_MONEY_LIMIT_SCALES: {_pair!r} is not CODE=positive whole number")
    MONEY_LIMIT_SCALES[_code.strip().upper()] = int(_scale)
# A sale's split: the platform fee and the seeding pool, in basis points of the price;
# the rest is the rights holder's royalty.
PLATFORM_FEE_BPS = env_int("PEERMARK_PLATFORM_FEE_BPS", default=1000, minimum=0)
SEEDING_SHARE_BPS = env_int("PEERMARK_SEEDING_SHARE_BPS", default=1000, minimum=0)
if PLATFORM_FEE_BPS + SEEDING_SHARE_BPS > 10_000:
    raise ImproperlyConfigured("PEERMARK_PLATFORM_FEE_BPS + PEERMARK_SEEDING_SHARE_BPS > 10000")
# The compute market's fee, on top of what contributors are paid (docs/COMPUTE.md).
COMPUTE_FEE_BPS = env_int("PEERMARK_COMPUTE_FEE_BPS", default=1000, minimum=0)
if COMPUTE_FEE_BPS > 10_000:
    raise ImproperlyConfigured("PEERMARK_COMPUTE_FEE_BPS > 10000")
# A contributing device is given no more work once this many of its results, and more
# than this share of them (basis points), disagreed with a quorum.
COMPUTE_SUSPEND_AFTER_DISAGREEMENTS = env_int("PEERMARK_COMPUTE_SUSPEND_AFTER", default=5,
                                              minimum=1)
COMPUTE_SUSPEND_RATE_BPS = env_int("PEERMARK_COMPUTE_SUSPEND_RATE_BPS", default=500, minimum=0)
COMPUTE_MAX_MODULE_BYTES = 8 * 1024 * 1024
# A job's JSON carries its units' inputs in base64 (64 MiB of inputs at most).
COMPUTE_MAX_JOB_BODY_BYTES = 96 * 1024 * 1024
COMPUTE_MAX_RESULTS_BODY_BYTES = 64 * 1024 * 1024
# A receipt settles this long after it arrives, so the serving peers' orders (which they
# submit in batches) are in by then.
METERING_GRACE_SECONDS = env_int("PEERMARK_METERING_GRACE_SECONDS", default=30, minimum=0)
# No receipt within this window: the buyer is refunded and the licence revoked.
RECEIPT_WINDOW_HOURS = env_int("PEERMARK_RECEIPT_WINDOW_HOURS", default=24, minimum=1)
PAYOUT_MINIMUM_MAJOR = env_int("PEERMARK_PAYOUT_MINIMUM_MAJOR", default=10, minimum=0)

IDEMPOTENCY_RETENTION_HOURS = env_int(
    "PEERMARK_IDEMPOTENCY_RETENTION_HOURS", default=48, minimum=24
)

# Reviews (exchange/reviews): per-member rates of writing reviews (and edits), replies
# and reports, in the notation of exchange/core/rate_limits.py.
REVIEWS_WRITE_RATE = env_str("PEERMARK_REVIEWS_WRITE_RATE", "20/hour") or "20/hour"
REVIEWS_REPLY_RATE = env_str("PEERMARK_REVIEWS_REPLY_RATE", "60/hour") or "60/hour"
REVIEWS_REPORT_RATE = env_str("PEERMARK_REVIEWS_REPORT_RATE", "20/hour") or "20/hour"

# Private messages (exchange/messaging): per-member rates in the notation of
# exchange/core/rate_limits.py ("20/min", "5/10s"), sizes in characters.
MESSAGING_SEND_RATE = env_str("PEERMARK_MESSAGING_SEND_RATE", "20/min") or "20/min"
MESSAGING_NEW_CONVERSATIONS_PER_DAY = env_int("PEERMARK_MESSAGING_NEW_CONVERSATIONS_PER_DAY",
                                              default=30, minimum=1)
MESSAGING_REPORT_RATE = env_str("PEERMARK_MESSAGING_REPORT_RATE", "20/hour") or "20/hour"
MESSAGING_BLOCK_RATE = env_str("PEERMARK_MESSAGING_BLOCK_RATE", "60/hour") or "60/hour"
MESSAGING_MAX_BODY_CHARS = env_int("PEERMARK_MESSAGING_MAX_BODY_CHARS", default=5000, minimum=1)
