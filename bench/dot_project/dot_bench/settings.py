"""A minimal Django project serving django-oauth-toolkit's token endpoint: the peer of bench_oauth.py.

The same Django, PostgreSQL server, connection reuse and WSGI server as Tiers; the middleware of
`django-admin startproject`. Its database is `dot_bench`, created and dropped by the benchmark.
"""

from __future__ import annotations

import os

DEBUG = False
SECRET_KEY = os.environ.get("DOT_SECRET_KEY", "bench-only-" + "x" * 50)
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "oauth2_provider",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dot_bench.urls"
WSGI_APPLICATION = "dot_bench.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DOT_DATABASE", "dot_bench"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 60,  # as Tiers
        "CONN_HEALTH_CHECKS": True,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

# Opaque tokens (DOT's default generator), stored in the database, as long-lived as Tiers' tokens.
OAUTH2_PROVIDER = {"ACCESS_TOKEN_EXPIRE_SECONDS": 300}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
