"""Redis through Sentinel: a real sentinel process names the suite's Redis as the master.

REDIS_URL's host does not resolve in these tests, so whatever reaches Redis found it through the
sentinel. The database is the suite's own (TEST_REDIS_URL's), which every test flushes anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from kombu import Connection
from redis.sentinel import SentinelConnectionPool
from rest_framework.test import APIClient

from broker import ratelimit
from broker.cache_client import raw_redis
from broker.redis_client import redis_client
from tests.broker.test_settings import PRODUCTION, ROOT, settings_under
from tests.conftest import StillClock

# A name of its own, so that this sentinel never pairs with another one watching the same Redis.
MASTER_NAME = "tiers-tests"
UNRESOLVABLE = "sentinel-names-the-master.invalid:1"
# What the code reads at run time; the rest of the settings are only read at start-up.
RUNTIME_SETTINGS = ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_KWARGS", "CACHES")


@dataclass(frozen=True)
class SentinelProcess:
    """A running sentinel and what it watches."""

    port: int
    master: tuple[str, int]
    database: int
    credentials: str  # REDIS_URL's user:password, "" when the suite's Redis has none
    suite_redis_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_master(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the sentinel until it names the master; fail with its log if it dies or stays silent."""
    asking = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the sentinel exited:\n{log.read_text()}")
            try:
                if asking.sentinel_get_master_addr_by_name(MASTER_NAME):
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the sentinel did not name {MASTER_NAME} within 15 s:\n{log.read_text()}")
    finally:
        asking.close()


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelProcess]:
    """A Redis Sentinel on a free port that watches the suite's Redis as `tiers-tests`; stopped afterwards."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not on PATH: these tests start a real Redis Sentinel with it")
    suite_redis = urlsplit(settings.REDIS_URL)
    host, port = suite_redis.hostname or "127.0.0.1", suite_redis.port or 6379
    directory = tmp_path_factory.mktemp("sentinel")
    sentinel_port = free_port()
    lines = [
        f"port {sentinel_port}",
        "bind 127.0.0.1",
        f"dir {directory}",
        "sentinel resolve-hostnames yes",
        f"sentinel monitor {MASTER_NAME} {host} {port} 1",
    ]
    if suite_redis.password:
        lines.append(f"sentinel auth-pass {MASTER_NAME} {unquote(suite_redis.password)}")
    config = directory / "sentinel.conf"
    config.write_text("\n".join(lines) + "\n")  # Sentinel rewrites this file: it must stay writable
    log = directory / "sentinel.log"
    with log.open("wb") as output:
        process = subprocess.Popen([server, str(config), "--sentinel"], stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_master(sentinel_port, process, log)
        yield SentinelProcess(
            port=sentinel_port,
            master=(host, port),
            database=int(suite_redis.path.strip("/") or 0),
            credentials=suite_redis.netloc.rpartition("@")[0],
            suite_redis_url=settings.REDIS_URL,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def sentinel_environment(sentinel: SentinelProcess) -> dict[str, str]:
    """The variables of a deployment behind this sentinel: REDIS_URL names the database, not the server."""
    userinfo = f"{sentinel.credentials}@" if sentinel.credentials else ""
    return {
        "REDIS_URL": f"redis://{userinfo}{UNRESOLVABLE}/{sentinel.database}",
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
    }


@pytest.fixture(scope="module")
def sentinel_settings(sentinel_environment: dict[str, str]) -> dict[str, Any]:
    """What broker.settings makes of that environment."""
    return settings_under(**{**PRODUCTION, **sentinel_environment})


@pytest.fixture
def direct(sentinel: SentinelProcess) -> Iterator[redis.Redis]:
    """A plain client of the suite's Redis database, to see where things landed."""
    with redis.Redis.from_url(sentinel.suite_redis_url) as client:
        yield client


@pytest.fixture
def through_sentinel(sentinel_settings: dict[str, Any]) -> Iterator[None]:
    """This process configured as behind the sentinel; the cache handler starts afresh on both sides."""
    with override_settings(**{name: sentinel_settings[name] for name in RUNTIME_SETTINGS}):
        yield


@pytest.mark.usefixtures("through_sentinel")
def test_the_cache_round_trips_a_value_through_sentinel(direct: redis.Redis) -> None:
    key = f"sentinel-{uuid.uuid4().hex}"
    cache.set(key, {"consent": "given"}, timeout=60)
    assert cache.get(key) == {"consent": "given"}
    assert direct.exists(cache.make_and_validate_key(key))  # on the master, in REDIS_URL's database


@pytest.mark.usefixtures("through_sentinel")
def test_raw_redis_pings_the_master_that_sentinel_names(sentinel: SentinelProcess) -> None:
    client = raw_redis()
    assert client.ping()
    assert isinstance(client.connection_pool, SentinelConnectionPool)
    assert client.connection_pool.get_master_address() == sentinel.master


@pytest.mark.usefixtures("through_sentinel")
def test_the_rate_limiter_counts_through_sentinel(still_clock: StillClock, direct: redis.Redis) -> None:
    key = f"sentinel-{uuid.uuid4().hex}"
    # The refusal shows the hits were counted: a limiter that cannot reach Redis allows them all.
    assert [ratelimit.allow(key, limit=2) for _ in range(3)] == [True, True, False]
    (bucket,) = direct.keys(cache.make_and_validate_key(f"ratelimit:{key}:*"))
    assert direct.get(bucket) == b"3"


@pytest.mark.django_db
@pytest.mark.usefixtures("through_sentinel")
def test_the_readiness_probe_and_liveness_announcements_reach_redis_through_sentinel(
    api: APIClient, direct: redis.Redis
) -> None:
    assert api.get("/readyz").json()["checks"] == {"database": True, "redis": True}
    channel = f"sentinel-{uuid.uuid4().hex}"
    with direct.pubsub() as listener, redis_client() as client:
        listener.subscribe(channel)
        assert listener.get_message(timeout=5)["type"] == "subscribe"
        assert isinstance(client.connection_pool, SentinelConnectionPool)
        assert client.publish(channel, "1") == 1  # heard on the suite's Redis


@pytest.mark.django_db
def test_redis_is_not_ready_when_no_sentinel_answers(api: APIClient, sentinel_settings: dict[str, Any]) -> None:
    nobody = {**sentinel_settings, "REDIS_SENTINELS": [["127.0.0.1", free_port()]]}
    with override_settings(**{name: nobody[name] for name in RUNTIME_SETTINGS}):
        response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "redis": False}


PUBLISH_WITH_THE_CELERY_APP = """
import json, sys
import django

django.setup()
from broker.celery import app

with app.connection_for_write() as connection:
    connection.ensure_connection(max_retries=3)
    with connection.SimpleQueue(sys.argv[1]) as queue:
        queue.put({"through": "sentinel"})
    print(json.dumps({"uri": connection.as_uri(), "transport": connection.transport_cls}))
"""


def test_celery_publishes_through_sentinel_and_kombu_receives_it(
    sentinel: SentinelProcess,
    sentinel_environment: dict[str, str],
    sentinel_settings: dict[str, Any],
    direct: redis.Redis,
) -> None:
    queue = f"tiers-sentinel-{uuid.uuid4().hex}"
    # The Celery app as a worker or beat builds it: a fresh process reading the settings.
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **sentinel_environment}
    result = subprocess.run(
        [sys.executable, "-c", PUBLISH_WITH_THE_CELERY_APP, queue],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    published = json.loads(result.stdout.splitlines()[-1])
    assert published["transport"] == "sentinel"
    assert published["uri"].endswith(f"127.0.0.1:{sentinel.port}/{sentinel.database}")
    assert direct.llen(queue) == 1  # waiting on the master, in REDIS_URL's database

    broker = Connection(
        sentinel_settings["CELERY_BROKER_URL"], transport_options=sentinel_settings["CELERY_BROKER_TRANSPORT_OPTIONS"]
    )
    with broker, broker.SimpleQueue(queue) as simple:
        message = simple.get(timeout=10)
        message.ack()
    assert message.payload == {"through": "sentinel"}
    assert direct.llen(queue) == 0
