"""Fixed-window rate limits kept in the cache (Redis in production)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from broker.cache_client import raw_redis

logger = logging.getLogger(__name__)

# The limits' clock; tests hold it still so that a burst never straddles two windows.
clock = time.time


def allow_all(*limits: tuple[str, int, int]) -> bool:
    """Count one hit on each (key, limit, window_seconds); False when any is over its limit.

    On Redis all keys go in one pipelined round trip (INCR, then EXPIRE NX). If the
    cache is down the hits are allowed: a limit must not turn a Redis outage into a
    refusal of service (the miss is logged).
    """
    now = clock()
    buckets = [
        (cache.make_and_validate_key(f"ratelimit:{key}:{int(now // window)}"), limit, window)
        for key, limit, window in limits
    ]
    try:
        client = raw_redis("ratelimit")
        if client is None:
            return all(_allow_locally(bucket, limit, window) for bucket, limit, window in buckets)
        pipeline = client.pipeline(transaction=False)
        for bucket, _, window in buckets:
            pipeline.incr(bucket)
            pipeline.expire(bucket, window + 1, nx=True)
        counts = pipeline.execute()[::2]
        return all(count <= limit for count, (_, limit, _) in zip(counts, buckets, strict=True))
    except Exception:
        logger.warning("rate limits %s not enforced: cache unavailable", [key for key, _, _ in limits])
        return True


def allow(key: str, *, limit: int, window_seconds: int = 60) -> bool:
    """Count one hit; False once `limit` hits fell in the current window."""
    return allow_all((key, limit, window_seconds))


def _allow_locally(bucket: str, limit: int, window: int) -> bool:
    if cache.add(bucket, 1, timeout=window + 1):
        return True
    return cache.incr(bucket) <= limit
