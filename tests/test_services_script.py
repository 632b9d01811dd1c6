"""`make test` says exactly what to install when its PostgreSQL does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_services_script_names_what_to_install_when_postgres_does_not_answer() -> None:
    env = {
        **os.environ,
        "PY": sys.executable,
        "TEST_DATABASE_URL": "postgres://postgres@127.0.0.1:1/tiers",
        "TEST_REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    result = subprocess.run(
        ["bash", "deploy/test-services.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "PostgreSQL does not answer at 127.0.0.1:1" in result.stderr
    assert "apt-get install postgresql" in result.stderr


def test_services_script_passes_when_both_services_answer() -> None:
    env = {**os.environ, "PY": sys.executable}
    env.setdefault("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tiers")
    env.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    result = subprocess.run(
        ["bash", "deploy/test-services.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL answers" in result.stdout
    assert "Redis answers" in result.stdout
