"""Fixed-window rate limits kept in the cache (Redis in production)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)


def allow(key: str, *, limit: int, window_seconds: int = 60) -> bool:
    """Count one hit; False once `limit` hits fell in the current window.

    If the cache is down the hit is allowed: a limit must not turn a Redis outage
    into a refusal of service (the hit is logged).
    """
    bucket = f"ratelimit:{key}:{int(time.time() // window_seconds)}"
    try:
        try:
            return cache.incr(bucket) <= limit  # one round trip in the common case
        except ValueError:  # the window's first hit
            if cache.add(bucket, 1, timeout=window_seconds + 1):
                return True
            return cache.incr(bucket) <= limit
    except Exception:
        logger.warning("rate limit %s not enforced: cache unavailable", key)
        return True
