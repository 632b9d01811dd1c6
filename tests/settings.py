"""The test suite's environment: production-shaped settings on the real PostgreSQL and Redis.

Only environment defaults live here; the settings themselves are broker.settings.
`make test` passes TEST_DATABASE_URL and TEST_REDIS_URL after making sure they answer.
"""

from __future__ import annotations

import os
import tempfile

os.environ["TIERS_ENV_FILE"] = ""  # a demo's .env must not leak into the tests
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tiers"))
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "x" * 40)
os.environ.setdefault("TIERS_KEK", "dGVzdHMtb25seS1rZXktZW5jcnlwdGlvbi1rZXktMzI=")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("TIERS_BASE_URL", "http://testserver")
os.environ.setdefault("CELERY_QUEUE", "tiers-tests")
os.environ.setdefault("EMAIL_URL", "consolemail://")
os.environ.setdefault("TIERS_UPLOAD_DIR", tempfile.mkdtemp(prefix="tiers-test-uploads-"))
# Proof-checking tests call the public API thousands of times; the throttle test sets its own rate.
os.environ.setdefault("THROTTLE_ANON", "100000/min")

from broker.settings import *  # noqa: F403

# Fast hashing for the many users tests create; Argon2 stays the production default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Templates resolve static files without a collectstatic manifest.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405 (WhiteNoise warns about a missing root)
