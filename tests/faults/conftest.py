"""The fault scenarios' own world: a private PostgreSQL and Redis, Tiers run by deploy/local.sh, a receiver.

These tests start servers and kill processes, so the normal run (`pytest`, `make test`'s
pytest step) does not collect them: `make faults` runs them with TIERS_FAULTS=1. Each
scenario prints one `FAULT …` line at the end of the session (see docs/faults.md).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
if os.environ.get("TIERS_FAULTS") != "1":
    collect_ignore_glob = ["test_*.py"]

FAULT_LINES: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: a fault scenario on servers of its own (make faults)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_LINES:
        terminalreporter.write_line("")
        for line in FAULT_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The suite's fixture clears the test Redis; these scenarios never touch it."""


class Deadline(AssertionError):
    pass


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until the condition returns something true; fail, naming what was awaited, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Deadline(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Stack:
    """Tiers as deploy/local.sh runs it, on servers of its own, with the world seeded."""

    postgres: Any
    redis: Any
    receiver: Any
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_dir: Path
    world: dict[str, Any]
    used_citizens: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return str(self.env["TIERS_BASE_URL"])

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.postgres.url, connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()

    def take_citizens(self, count: int) -> list[Any]:
        from tests.faults.client import citizens_of

        people = citizens_of(self.world)[self.used_citizens : self.used_citizens + count]
        assert len(people) == count, "the world has too few citizens for the scenarios"
        self.used_citizens += count
        return people

    def manage(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def pid(self, name: str) -> int:
        return int((self.log_dir / f"{name}.pid").read_text())


def _tiers_env(postgres: Any, redis: Any, port: int, log_dir: Path) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "TEST_"))},
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TIERS_KEK": base64.b64encode(os.urandom(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TIERS_BASE_URL": f"http://127.0.0.1:{port}",
        "TIERS_ENV_FILE": "",
        "DEBUG": "false",
        "PORT": str(port),
        "TIERS_LOG_DIR": str(log_dir),
        "WEB_CONCURRENCY": "4",
        "CELERY_WORKERS": "2",
        "CELERY_CONCURRENCY": "1",
        "CELERY_QUEUE": "tiers-faults",
        "TIERS_UPLOAD_DIR": str(log_dir.parent / "uploads"),
        "TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",
        # Faster clocks than production, so that each scenario ends in seconds; docs/faults.md.
        "OUTBOX_RESEND_AFTER_SECONDS": "2",
        "OUTBOX_SWEEP_SECONDS": "2",
        "OUTBOX_LEASE_SECONDS": "20",
        "TIERS_WEBHOOK_BACKOFF_BASE_SECONDS": "1",
        "TIERS_WEBHOOK_LEASE_SECONDS": "8",
        "TIERS_WEBHOOK_RETRY_SECONDS": "2",
        "THROTTLE_ANON": "100000/min",
        "THROTTLE_USER": "100000/min",
        "OAUTH_TOKEN_RATE_PER_CLIENT": "100000",
        "OAUTH_TOKEN_RATE_PER_ADDRESS": "100000",
        "DATABASE_CONN_MAX_AGE": "60",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sys.path.insert(0, str(ROOT / "deploy" / "faults"))
    from private_servers import PrivatePostgres, PrivateRedis, free_port

    from tests.faults.receiver import Receiver

    base = tmp_path_factory.mktemp("faults")
    log_dir = base / "log"
    postgres = PrivatePostgres().create()
    redis = PrivateRedis().start()
    receiver = Receiver(free_port())
    port = free_port()
    env = _tiers_env(postgres, redis, port, log_dir)
    receiver.configure(env["TIERS_BASE_URL"])
    receiver.start()
    process = None
    try:
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        world_file = base / "world.json"
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.faults.world", str(world_file), receiver.base_url, "24"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        output = (base / "local.out").open("wb")
        process = subprocess.Popen([str(ROOT / "deploy" / "local.sh")], cwd=ROOT, env=env, stdout=output, stderr=output)
        wait_until(
            lambda: process.poll() is not None or b"serving on" in (base / "local.out").read_bytes(),
            timeout=120,
            what="deploy/local.sh serving",
        )
        assert process.poll() is None, (base / "local.out").read_text()
        stack = Stack(postgres, redis, receiver, env, process, log_dir, json.loads(world_file.read_text()))
        wait_until(lambda: _workers_ready(stack), timeout=60, what="Celery workers ready")
        yield stack
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        receiver.stop()
        redis.destroy()
        postgres.destroy()


def _workers_ready(stack: Stack) -> bool:
    logs = [stack.log_dir / f"worker-{n}.log" for n in (1, 2)]
    return all(log.exists() and "ready." in log.read_text() for log in logs)
