"""Connections to the current Redis master: the server at REDIS_URL, or the one Redis Sentinel names.

With REDIS_SENTINELS set, REDIS_URL gives only the database number and the master's credentials:
each new connection asks a sentinel where the master is now, so a failover needs no restart.
Django's cache gets its connections here (SentinelMasterPool), and so does every other client
Tiers opens; Celery's broker asks the same sentinels through kombu's sentinel:// transport
(broker/settings.py).
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

# What locates a server in a URL; under Sentinel the master's address comes from the sentinels.
_ADDRESS = ("host", "port", "path", "connection_class")


def connection_pool(url: str, **options: Any) -> redis.ConnectionPool:
    """A pool of connections to the Redis master: `url`'s server, or Sentinel's master when REDIS_SENTINELS is set."""
    if not settings.REDIS_SENTINELS:
        return redis.ConnectionPool.from_url(url, **options)
    return sentinel_pool(url, **options)


def sentinel_pool(url: str, **options: Any) -> SentinelConnectionPool:
    """A pool of connections to REDIS_SENTINEL_MASTER, with the database and credentials of `url`."""
    params = {name: value for name, value in parse_url(url).items() if name not in _ADDRESS}
    sentinel = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=settings.REDIS_SENTINEL_KWARGS)
    return SentinelConnectionPool(settings.REDIS_SENTINEL_MASTER, sentinel, **{**params, **options})


class SentinelMasterPool:
    """The `pool_class` of Django's Redis cache under Sentinel (CACHES in broker/settings.py)."""

    from_url = staticmethod(sentinel_pool)


def redis_client(**options: Any) -> redis.Redis:
    """A new client of the Redis master that REDIS_URL names (through Sentinel when set); close it after use."""
    return redis.Redis.from_pool(connection_pool(settings.REDIS_URL, **options))
