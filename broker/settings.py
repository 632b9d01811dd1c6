"""Tiers settings, read from the environment (12-factor).

Every variable is listed with a comment in deploy/.env.example. With DEBUG
off, a missing required variable stops start-up with a message naming it.
`make demo` writes its defaults to a git-ignored `.env` file at the project
root; real environment variables always win over that file.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets admin and forms classes be subscripted for type checking at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = env.str("TIERS_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "TIERS_KEK")
if not DEBUG:
    _missing = [name for name in REQUIRED_IN_PRODUCTION if name not in env.ENVIRON]
    if _missing:
        raise ImproperlyConfigured(
            "Tiers cannot start: DEBUG is off and these environment variables are missing: "
            + ", ".join(_missing)
            + ". See deploy/.env.example for what each one means."
        )

SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-only-for-debug")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])


def _kek(value: str) -> bytes:
    """Decode TIERS_KEK: 32 random bytes, base64 (standard or URL-safe alphabet)."""
    try:
        key = base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured("TIERS_KEK is not valid base64.") from exc
    if len(key) != 32:
        raise ImproperlyConfigured(f"TIERS_KEK must decode to 32 bytes, not {len(key)}.")
    return key


# The key-encryption key: every other key Tiers keeps is stored encrypted under it.
TIERS_KEK = _kek(env.str("TIERS_KEK", default=base64.b64encode(b"debug-only-key-encryption-key-32").decode()))
# The KEK being replaced, only while `manage.py kek_rewrap` moves every sealed key to TIERS_KEK.
TIERS_KEK_PREVIOUS = _kek(_previous) if (_previous := env.str("TIERS_KEK_PREVIOUS", default="")) else None

# Every URL Tiers publishes about itself (OAuth issuer, links) starts with this.
TIERS_BASE_URL = env.str("TIERS_BASE_URL", default=f"https://{ALLOWED_HOSTS[0]}").rstrip("/")
SERVED_OVER_HTTPS = urlsplit(TIERS_BASE_URL).scheme == "https"

INSTALLED_APPS = [
    # First, so that the portal's registration/ templates are found before the admin's.
    "broker",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "consent",
    "sharing",
]

MIDDLEWARE = [
    # First: the request id and the HTTP metrics cover every other middleware (docs/observability.md).
    "broker.observability.middleware.RequestObservabilityMiddleware",
    # A lost database answers 503, whichever layer met it (docs/faults.md).
    "broker.database_errors.DatabaseUnavailableMiddleware",
    # Probes answer at a pod's own address, before the Host check (broker/health.py).
    "broker.health.ProbeMiddleware",
    "broker.middleware.TrustedProxyMiddleware",
    # Refuses an oversized body before anything reads it (docs/security.md).
    "broker.security.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # CSP and the other headers, before WhiteNoise so that static files get them too.
    "broker.security.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A session past the password but not the second factor reaches only /accounts/2fa/.
    "broker.security.twofactor.SecondFactorMiddleware",
    # Idempotency-Key on the API's creating requests, once the caller is known.
    "broker.security.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "broker.urls"
WSGI_APPLICATION = "broker.wsgi.application"
ASGI_APPLICATION = "broker.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------

if "DATABASE_URL" not in env.ENVIRON:
    (BASE_DIR / "var").mkdir(exist_ok=True)  # the demo's embedded database lives here
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'tiers.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the demo's web and scheduler processes
    # write the same file without "database is locked" errors.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "broker.User"

# --- Redis, cache and Celery ------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")


def _sentinel_address(address: str) -> tuple[str, int]:
    """Read one host:port of REDIS_SENTINELS (the port defaults to Sentinel's 26379)."""
    try:
        parts = urlsplit(f"//{address.strip()}")
        if parts.hostname:
            return parts.hostname, parts.port or 26379
    except ValueError:
        pass
    raise ImproperlyConfigured(f"REDIS_SENTINELS: {address!r} is not a host:port.")


def _sentinel_broker_url(redis_url: str, sentinels: list[tuple[str, int]]) -> str:
    """Celery's broker URL through Sentinel: every sentinel, each with REDIS_URL's credentials and database.

    kombu reads the database and password from the first URL and, failing over, from the next one.
    """
    parts = urlsplit(redis_url)
    credentials = parts.netloc.rpartition("@")[0]
    scheme = f"sentinel://{credentials}@" if credentials else "sentinel://"
    database = parts.path.strip("/") or "0"
    hosts = [(f"[{host}]" if ":" in host else host, port) for host, port in sentinels]
    return ";".join(f"{scheme}{host}:{port}/{database}" for host, port in hosts)


# Redis Sentinel (docs/operations.md, "Scale out"): when set, every Redis user asks these sentinels
# where the master of REDIS_SENTINEL_MASTER is; REDIS_URL then gives only its database and password.
REDIS_SENTINELS = [_sentinel_address(address) for address in env.list("REDIS_SENTINELS", default=[])]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="tiers")
# How the sentinels are asked: a sentinel that does not answer in time is skipped for the next one.
REDIS_SENTINEL_KWARGS: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
if _sentinel_password := env.str("REDIS_SENTINEL_PASSWORD", default=""):
    REDIS_SENTINEL_KWARGS["password"] = _sentinel_password
if REDIS_SENTINELS and urlsplit(REDIS_URL).scheme != "redis":
    raise ImproperlyConfigured(
        "REDIS_SENTINELS needs a redis:// REDIS_URL for the master's database and password "
        "(TLS through Sentinel is not supported)."
    )

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tiers",
        }
    }
    if REDIS_SENTINELS:
        CACHES["default"]["OPTIONS"] = {"pool_class": "broker.redis_client.SentinelMasterPool"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# See docs/celery.md for why each of these is set.
CELERY_BROKER_URL = _sentinel_broker_url(REDIS_URL, REDIS_SENTINELS) if REDIS_SENTINELS else REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL  # no Redis: the demo runs tasks in-process
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Longer than the longest task (ingesting a 1 GiB upload), or Redis hands a running task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7200)
}
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS |= {"master_name": REDIS_SENTINEL_MASTER, "sentinel_kwargs": REDIS_SENTINEL_KWARGS}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers and beat wait for Redis as long as it is down, and resume when it returns.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# On a lost connection, running tasks are cancelled: Redis will hand their messages out again.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A publish while Redis is down fails fast; the outbox sweeper re-sends later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="tiers")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "broker.tasks.outbox_sweep", "schedule": env.float("OUTBOX_SWEEP_SECONDS", default=30.0)},
    # Commit to signed checkpoint within a few seconds; a late run is dropped, not queued.
    "audit-sequence": {"task": "broker.tasks.audit_sequence", "schedule": 1.0, "options": {"expires": 5}},
    "oauth-purge-expired": {"task": "broker.tasks.oauth_purge_expired", "schedule": 3600.0},
    # Re-queues webhook deliveries whose next attempt is due, or whose worker died (docs/webhooks.md).
    "webhooks-retry": {
        "task": "broker.webhooks.tasks.webhooks_retry",
        "schedule": env.float("TIERS_WEBHOOK_RETRY_SECONDS", default=15.0),
        "options": {"expires": 30},
    },
    # Scheduled jobs (docs/jobs.md): each is safe to run twice at once; a run later than its
    # interval is dropped, since the next one does the same work.
    "consents-expire": {"task": "consent.tasks.consents_expire", "schedule": 300.0, "options": {"expires": 300}},
    "grants-expire": {"task": "sharing.tasks.grants_expire", "schedule": 60.0, "options": {"expires": 60}},
    "vault-purge": {"task": "sharing.tasks.vault_purge", "schedule": 3600.0, "options": {"expires": 3600}},
    "delivery-logs-purge": {
        "task": "sharing.tasks.delivery_logs_purge",
        "schedule": 86400.0,
        "options": {"expires": 86400},
    },
    "consent-reminders": {
        "task": "consent.tasks.consent_reminders_send",
        "schedule": 86400.0,
        "options": {"expires": 86400},
    },
    "citizen-digests": {"task": "consent.tasks.digests_send", "schedule": 86400.0, "options": {"expires": 86400}},
}

# --- Scheduled jobs -------------------------------------------------------------

# Citizens are reminded this many days before a consent expires (once per consent and term).
TIERS_CONSENT_REMINDER_DAYS = env.int("TIERS_CONSENT_REMINDER_DAYS", default=30)
# Who-was-included rows of deliveries (a citizen's "who used my data", what routes their rights
# requests) are deleted after this many days; deliveries and their audit entries stay.
TIERS_DELIVERY_LOG_RETENTION_DAYS = env.int("TIERS_DELIVERY_LOG_RETENTION_DAYS", default=400)

# Outbox events not handled this long after they were written are re-sent.
OUTBOX_RESEND_AFTER_SECONDS = env.int("OUTBOX_RESEND_AFTER_SECONDS", default=60)
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
# An event claimed this many times without success is quarantined (docs/celery.md).
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)

# --- Data sharing ---------------------------------------------------------------

# Where uploads wait for ingestion: a disk the web processes and the workers share.
TIERS_UPLOAD_DIR = env.str("TIERS_UPLOAD_DIR", default=str(BASE_DIR / "var" / "uploads"))
# The largest upload accepted, in bytes (a request beyond it is refused with 413).
TIERS_UPLOAD_MAX_BYTES = env.int("TIERS_UPLOAD_MAX_BYTES", default=1 << 30)

# --- The DGA registration -----------------------------------------------------

# The official SVG of the common logo of Commission Implementing Regulation (EU) 2023/1622,
# downloaded from the Commission; empty: the public pages show the prescribed text label instead.
TIERS_DGA_LOGO_FILE = env.str("TIERS_DGA_LOGO_FILE", default="")

# Operators' workspace: also demand a passed second factor from sessions not opened by the login form
# (which always asks operators and organisation admins for one; docs/security.md).
TIERS_OPERATOR_2FA_REQUIRED = env.bool("TIERS_OPERATOR_2FA_REQUIRED", default=False)
# Passkeys (WebAuthn) belong to this domain; empty: the host name each request came to. Set it to the
# portal's domain (or a parent of it) when Tiers answers under several names.
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="")

# --- Webhooks -------------------------------------------------------------------

# Endpoints are HTTPS. Plain http:// to 127.0.0.1 or localhost is also accepted when this is true:
# by default in DEBUG, or when Tiers itself is not served over HTTPS (the demo, the tests).
# First retry after about this many seconds (full jitter), doubling up to an hour between attempts.
TIERS_WEBHOOK_BACKOFF_BASE_SECONDS = env.float("TIERS_WEBHOOK_BACKOFF_BASE_SECONDS", default=30.0)
# A worker's claim on a delivery: longer than one attempt (10 s timeout, signing), so a live worker
# keeps it; a killed worker's delivery is retried once it lapses.
TIERS_WEBHOOK_LEASE_SECONDS = env.int("TIERS_WEBHOOK_LEASE_SECONDS", default=60)
TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP = env.bool(
    "TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP", default=DEBUG or not SERVED_OVER_HTTPS
)

# --- OAuth 2.0 ----------------------------------------------------------------

if not SERVED_OVER_HTTPS:
    # authlib refuses plain HTTP; the demo and the tests are served on http://127.0.0.1.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
# Access tokens live minutes, not authlib's default of days.
OAUTH_ACCESS_TOKEN_SECONDS = env.int("OAUTH_ACCESS_TOKEN_SECONDS", default=300)
# Token endpoint limits (RFC 9700 §4.16): per client, and per calling address before authentication.
OAUTH_TOKEN_RATE_PER_CLIENT = env.int("OAUTH_TOKEN_RATE_PER_CLIENT", default=120)
OAUTH_TOKEN_RATE_PER_ADDRESS = env.int("OAUTH_TOKEN_RATE_PER_ADDRESS", default=600)

# --- Login with OpenID Connect ------------------------------------------------

_OIDC_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_OIDC_REQUIRED_KEYS = ("name", "label", "server_metadata_url", "client_id")


def _oidc_provider(provider: object, seen: set[str]) -> dict[str, Any]:
    """Check one entry of TIERS_OIDC_PROVIDERS and fill in its defaults."""
    if not isinstance(provider, dict):
        raise ImproperlyConfigured("TIERS_OIDC_PROVIDERS must be a JSON list of objects.")
    missing = [key for key in _OIDC_REQUIRED_KEYS if not provider.get(key)]
    if missing:
        raise ImproperlyConfigured(f"TIERS_OIDC_PROVIDERS: a provider lacks {', '.join(missing)}.")
    name = provider["name"]
    if not isinstance(name, str) or not _OIDC_PROVIDER_NAME.match(name) or name in seen:
        raise ImproperlyConfigured(
            f"TIERS_OIDC_PROVIDERS: provider name {name!r} must be unique, lowercase letters, digits, - or _."
        )
    scope = provider.get("scope") or "openid email profile"
    # Without "openid" there is no ID token and no nonce: nothing to verify the login with.
    if "openid" not in str(scope).split():
        raise ImproperlyConfigured(f"TIERS_OIDC_PROVIDERS: the scope of {name!r} must include openid.")
    url = str(provider["server_metadata_url"])
    if SERVED_OVER_HTTPS and not url.startswith("https://"):
        raise ImproperlyConfigured(f"TIERS_OIDC_PROVIDERS: the server_metadata_url of {name!r} must be https.")
    seen.add(name)
    return {
        "name": name,
        "label": str(provider["label"]),
        "server_metadata_url": url,
        "client_id": str(provider["client_id"]),
        "client_secret": str(provider.get("client_secret") or ""),
        "scope": str(scope),
        "authorize_params": dict(provider.get("authorize_params") or {}),
    }


def _oidc_providers() -> list[dict[str, Any]]:
    """Read TIERS_OIDC_PROVIDERS: the OpenID Connect providers citizens may log in with."""
    try:
        providers = env.json("TIERS_OIDC_PROVIDERS", default=[])
    except ValueError as exc:
        raise ImproperlyConfigured(f"TIERS_OIDC_PROVIDERS is not valid JSON: {exc}") from exc
    if not isinstance(providers, list):
        raise ImproperlyConfigured("TIERS_OIDC_PROVIDERS must be a JSON list of objects.")
    seen: set[str] = set()
    return [_oidc_provider(provider, seen) for provider in providers]


# Each: name (in URLs), label (on the login page), server_metadata_url (discovery), client_id,
# client_secret (empty for a public client), scope, authorize_params (e.g. FranceConnect's acr_values).
TIERS_OIDC_PROVIDERS = _oidc_providers()

# --- Authentication and sessions --------------------------------------------

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal-home"
LOGOUT_REDIRECT_URL = "portal-home"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Readable by scripts on purpose: API clients that use a session send it back as X-CSRFToken.
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_AGE = 60 * 60 * 8

# --- Security headers and HTTPS ---------------------------------------------

# How many proxies in front of Tiers append to X-Forwarded-For (nginx alone: 1). The caller's
# address, which per-address limits count, is read that many entries from the right.
TIERS_TRUSTED_PROXY_HOPS = env.int("TIERS_TRUSTED_PROXY_HOPS", default=0)

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if SERVED_OVER_HTTPS:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes reach the pods over plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
CSRF_TRUSTED_ORIGINS = [TIERS_BASE_URL]

# --- Security -------------------------------------------------------------------------

# No inline script anywhere; pages with a fixed inline <style> get its hash (broker/security/headers.py).
TIERS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
TIERS_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# The largest request body Django or the API reads into memory (uploads stream: TIERS_UPLOAD_MAX_BYTES);
# a larger one is refused with 413. 2.5 MiB holds a decision request of 10,000 subject references.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# --- Internationalisation ---------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files -----------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "broker.oauth.authentication.AccessTokenAuthentication",
        "broker.api_base.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "broker.api_base.CursorPagination",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "broker.api_base.ContentNegotiation",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "broker.problems.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "broker.throttling.AnonymousRateThrottle",
        "broker.throttling.CallerRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="1000/min"),
        "user": env.str("THROTTLE_USER", default="2000/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tiers API",
    "DESCRIPTION": (
        "The API of Tiers, a trusted third party for data sharing in the public interest. "
        "Errors are RFC 9457 problem details (application/problem+json)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVERS": [{"url": "/"}],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "broker.api_schema.add_problem_responses",
    ],
    # Several models have a `state`; each choice set gets its own, readable name.
    "ENUM_NAME_OVERRIDES": {
        "DatasetStateEnum": "sharing.models.Dataset.State",
        "UploadStateEnum": "sharing.models.Upload.State",
        "AgreementStateEnum": "sharing.models.Agreement.State",
        "AccessRequestStateEnum": "sharing.models.AccessRequest.State",
        "GrantStateEnum": "sharing.models.Grant.State",
        "ApprovalModeEnum": "sharing.models.Agreement.ApprovalMode",
        "OrganisationKindEnum": "broker.models.Organisation.Kind",
        "DeliveryKindEnum": "sharing.models.Delivery.Kind",
    },
}

# --- Logs and metrics -------------------------------------------------------------

# One JSON object a line (json), or readable lines for a person at a terminal (console, the demo's
# default). Fields, the request id and what is never logged: docs/observability.md.
TIERS_LOG_FORMAT = env.str("TIERS_LOG_FORMAT", default="console" if DEBUG else "json")
if TIERS_LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"TIERS_LOG_FORMAT is json or console, not {TIERS_LOG_FORMAT!r}.")
# Django calls this with LOGGING in every process: structlog, and the Celery hooks for the request id.
LOGGING_CONFIG = "broker.observability.setup"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "broker.observability.logs.StructuredFormatter", "renderer": TIERS_LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers (plain text, mail to ADMINS) are replaced: its lines go to the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# GET /metrics answers the bearer of this token; empty, only a direct call from 127.0.0.1 or ::1.
TIERS_METRICS_TOKEN = env.str("TIERS_METRICS_TOKEN", default="")
# A Celery worker serves its own counters (webhook failures...) on this port; 0: it does not.
TIERS_WORKER_METRICS_PORT = env.int("TIERS_WORKER_METRICS_PORT", default=0)
if SERVED_OVER_HTTPS:
    # Prometheus scrapes each pod over plain HTTP inside the cluster, as the probes do.
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# Where `seed_demo` writes the demo's logins.
DEMO_CREDENTIALS_FILE = BASE_DIR / "demo-credentials.json"

# --- Mail ---------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_HOST = EMAIL_CONFIG.get("EMAIL_HOST", "localhost")
EMAIL_PORT = EMAIL_CONFIG.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = EMAIL_CONFIG.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = EMAIL_CONFIG.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = EMAIL_CONFIG.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = EMAIL_CONFIG.get("EMAIL_USE_SSL", False)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="") or EMAIL_CONFIG["EMAIL_BACKEND"]
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="") or str(BASE_DIR / "var" / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tiers <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
