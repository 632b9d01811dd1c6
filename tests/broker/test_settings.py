"""Settings from the environment: production refuses to start half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
