"""Personas shared by the whole suite: two citizens, a holder, a user, an operator and a stranger."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from broker.models import Membership, Organisation, User
from tests.factories import CitizenFactory, MembershipFactory, OrganisationFactory, UserFactory


def pytest_configure(config: pytest.Config) -> None:
    """Stop at once, saying what to do, when the suite's PostgreSQL does not answer."""
    database = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=int(database["PORT"] or 5432),
            user=database["USER"] or "postgres",
            password=database["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL does not answer at {database['HOST']}:{database['PORT']}: {exc}\n"
            "Run the suite with `make test`, which starts or installs it, or set TEST_DATABASE_URL.",
            returncode=3,
        )


@pytest.fixture
def alice(db: None) -> User:
    """A citizen."""
    return CitizenFactory(username="alice")


@pytest.fixture
def bob(db: None) -> User:
    """Another citizen."""
    return CitizenFactory(username="bob")


@pytest.fixture
def holder(db: None) -> Organisation:
    """A data holder: an energy utility."""
    return OrganisationFactory(slug="volta", name="Volta Énergie", kind=Organisation.Kind.HOLDER)


@pytest.fixture
def data_user(db: None) -> Organisation:
    """A data user: a city."""
    return OrganisationFactory(
        slug="marlieux",
        name="Ville de Marlieux",
        kind=Organisation.Kind.USER,
        recipient_category=Organisation.RecipientCategory.PUBLIC_AUTHORITY,
    )


@pytest.fixture
def holder_admin(holder: Organisation) -> User:
    return MembershipFactory(user__username="hana", organisation=holder, role=Membership.Role.ADMIN).user


@pytest.fixture
def user_admin(data_user: Organisation) -> User:
    return MembershipFactory(user__username="ugo", organisation=data_user, role=Membership.Role.ADMIN).user


@pytest.fixture
def operator(db: None) -> User:
    """One of the broker's own staff."""
    return UserFactory(username="olga", is_staff=True)


@pytest.fixture
def stranger(db: None) -> User:
    """Logged in, but neither citizen, member nor operator."""
    return UserFactory(username="sam")


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User) -> APIClient:
    """An API client with the user's session."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def celery_worker_process(transactional_db: None, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real Celery worker process on the test database and the test Redis."""
    from broker.celery import app

    app.control.purge()  # messages left by earlier runs name rows that no longer exist
    database = settings.DATABASES["default"]
    database_url = (
        f"postgres://{quote(database['USER'] or '')}:{quote(database['PASSWORD'] or '')}"
        f"@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    )
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "broker",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "-n",
            f"tests-{os.getpid()}@%h",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start:\n" + (tmp_path / "worker.log").read_text())
        yield WorkerProcess(process=process, mail_dir=mail_dir, log=tmp_path / "worker.log")
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    mail_dir: Path
    log: Path


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll until the condition holds; fail after the timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Caches outlive a test's rolled-back rows: throttle counts in Redis, keys and tokens in memory."""
    from django.core.cache import cache

    from broker import keys
    from broker.oauth import clients, tokens

    cache.clear()
    keys.forget_cached_keys()
    tokens.forget_verified()
    clients.forget_clients()
    yield
    cache.clear()


@dataclass
class StillClock:
    """The rate limits' clock, held at one instant until a test moves it on."""

    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> StillClock:
    """Hold the rate limits' clock mid-minute, so a burst of requests falls in one window however slow the machine."""
    from broker import ratelimit

    clock = StillClock(now=(time.time() // 60) * 60 + 30)
    monkeypatch.setattr(ratelimit, "clock", clock)
    return clock
