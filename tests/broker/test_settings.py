"""Settings from the environment: production refuses to start half-configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": "a-long-random-production-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "tiers.example.eu",
    "DATABASE_URL": "postgres://tiers@db.internal:5432/tiers",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "TIERS_KEK": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py with exactly the given environment (plus PATH), as a deployment would."""
    env = {"PATH": os.environ["PATH"], "TIERS_ENV_FILE": "", **environment}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# The settings that say how Tiers reaches Redis.
REDIS_SETTINGS = (
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_KWARGS",
    "CACHES",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_TRANSPORT_OPTIONS",
    "CELERY_RESULT_BACKEND",
    "CELERY_TASK_ALWAYS_EAGER",
)


def settings_under(**environment: str) -> dict[str, Any]:
    """The Redis settings broker.settings makes of exactly this environment (in a fresh process, as JSON)."""
    script = (
        "import json, sys; from broker import settings; "
        "print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}))"
    )
    env = {"PATH": os.environ["PATH"], "TIERS_ENV_FILE": "", **environment}
    result = subprocess.run(
        [sys.executable, "-c", script, *REDIS_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_check_deploy_is_clean_with_only_the_production_variables() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", sorted(PRODUCTION))
def test_production_start_up_names_a_missing_variable(missing: str) -> None:
    environment = {name: value for name, value in PRODUCTION.items() if name != missing}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert f"missing: {missing}" in result.stderr
    assert "deploy/.env.example" in result.stderr


def test_a_short_key_encryption_key_is_refused() -> None:
    result = manage("check", **{**PRODUCTION, "TIERS_KEK": "c2hvcnQ="})
    assert result.returncode != 0
    assert "TIERS_KEK must decode to 32 bytes" in result.stderr


def test_every_setting_read_from_the_environment_is_documented() -> None:
    documented = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / "deploy" / ".env.example").read_text().splitlines()
        if "=" in line
    }
    source = (ROOT / "broker" / "settings.py").read_text()
    import re

    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source)) - {"TIERS_ENV_FILE"}
    assert read <= documented, f"undocumented: {sorted(read - documented)}"


def test_passwords_are_hashed_with_argon2_in_production() -> None:
    from broker import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_without_sentinels_redis_is_the_one_server_at_redis_url() -> None:
    assert settings_under(**PRODUCTION) == {
        "REDIS_URL": "redis://redis.internal:6379/0",
        "REDIS_SENTINELS": [],
        "REDIS_SENTINEL_MASTER": "tiers",
        "REDIS_SENTINEL_KWARGS": {"socket_timeout": 2.0, "socket_connect_timeout": 2.0},
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://redis.internal:6379/0",
                "KEY_PREFIX": "tiers",
            }
        },
        "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 7200},
        "CELERY_RESULT_BACKEND": None,
        "CELERY_TASK_ALWAYS_EAGER": False,
    }


def test_with_sentinels_the_broker_and_the_cache_ask_them_for_redis_urls_master() -> None:
    redis = settings_under(
        **{
            **PRODUCTION,
            "REDIS_URL": "redis://:master%40secret@unused.internal:6379/3",
            "REDIS_SENTINELS": "sentinel-0.internal:26379, sentinel-1.internal,[fd00::7]:26380",
            "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
        }
    )
    assert redis["REDIS_SENTINELS"] == [
        ["sentinel-0.internal", 26379],
        ["sentinel-1.internal", 26379],
        ["fd00::7", 26380],
    ]
    assert redis["CELERY_BROKER_URL"] == (
        "sentinel://:master%40secret@sentinel-0.internal:26379/3;"
        "sentinel://:master%40secret@sentinel-1.internal:26379/3;"
        "sentinel://:master%40secret@[fd00::7]:26380/3"
    )
    sentinel_kwargs = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "password": "sentinel-secret"}
    assert redis["CELERY_BROKER_TRANSPORT_OPTIONS"] == {
        "visibility_timeout": 7200,
        "master_name": "tiers",
        "sentinel_kwargs": sentinel_kwargs,
    }
    assert redis["CACHES"]["default"]["LOCATION"] == "redis://:master%40secret@unused.internal:6379/3"
    assert redis["CACHES"]["default"]["OPTIONS"] == {"pool_class": "broker.redis_client.SentinelMasterPool"}
    assert redis["REDIS_SENTINEL_KWARGS"] == sentinel_kwargs
    assert redis["CELERY_RESULT_BACKEND"] is None  # Tiers keeps no task results in Redis


def test_the_master_is_named_by_redis_sentinel_master() -> None:
    redis = settings_under(**PRODUCTION, REDIS_SENTINELS="sentinel.internal", REDIS_SENTINEL_MASTER="tiers-eu")
    assert redis["REDIS_SENTINEL_MASTER"] == "tiers-eu"
    assert redis["CELERY_BROKER_TRANSPORT_OPTIONS"]["master_name"] == "tiers-eu"
    assert redis["CELERY_BROKER_URL"] == "sentinel://sentinel.internal:26379/0"
    assert "password" not in redis["REDIS_SENTINEL_KWARGS"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"REDIS_SENTINELS": "sentinel.internal:port"}, "REDIS_SENTINELS: 'sentinel.internal:port' is not a host:port"),
        ({"REDIS_SENTINELS": "sentinel.internal", "REDIS_URL": "rediss://redis.internal:6380/0"}, "needs a redis://"),
    ],
)
def test_a_sentinel_configuration_tiers_cannot_follow_is_refused(variables: dict[str, str], message: str) -> None:
    result = manage("check", **{**PRODUCTION, **variables})
    assert result.returncode != 0
    assert message in result.stderr
