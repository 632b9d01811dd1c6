"""Limits on guessing (passwords, second-factor codes) that hold while Redis is down.

Each attempt is counted first, then compared with the limit, so concurrent guesses
cannot all slip under it. The count lives in Redis (a fixed window, one pipelined
round trip); when Redis does not answer, the attempt is written to PostgreSQL
(`LoginAttempt`) and the window is counted there instead. Unlike the API's rate
limits (`broker.ratelimit`), these fail closed onto the database, never open.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time

from django.core.cache import cache
from django.utils import timezone

from broker.cache_client import raw_redis
from broker.security.models import LoginAttempt

logger = logging.getLogger(__name__)

# Rows older than this are pruned: longer than any window used with this module.
RETENTION = datetime.timedelta(days=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _bucket(scope: str, key: str, window: int) -> str:
    return cache.make_and_validate_key(f"attempts:{scope}:{_digest(key)}:{int(time.time() // window)}")


def hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one attempt; False when more than `limit` fell in the window (this one included)."""
    try:
        return _hit_in_cache(scope, key, limit=limit, window=window_seconds)
    except Exception:
        logger.warning("attempt limit %s counted in the database: cache unavailable", scope)
        return _hit_in_database(scope, key, limit=limit, window=window_seconds)


def clear(scope: str, key: str, *, window_seconds: int) -> None:
    """Forget the attempts of a key (after a success), wherever they were counted."""
    try:
        client = raw_redis("attempts")
        if client is None:
            cache.delete(_bucket(scope, key, window_seconds))
        else:
            client.delete(_bucket(scope, key, window_seconds))
    except Exception:
        logger.warning("attempt limit %s not cleared in the cache: cache unavailable", scope)
    LoginAttempt.objects.filter(scope=scope, key_digest=_digest(key)).delete()


def _hit_in_cache(scope: str, key: str, *, limit: int, window: int) -> bool:
    bucket = _bucket(scope, key, window)
    client = raw_redis("attempts")
    if client is None:  # the demo's in-process cache
        if cache.add(bucket, 1, timeout=window + 1):
            return limit >= 1
        return int(cache.incr(bucket)) <= limit
    pipeline = client.pipeline(transaction=False)
    pipeline.incr(bucket)
    pipeline.expire(bucket, window + 1, nx=True)
    count = pipeline.execute()[0]
    return int(count) <= limit


def _hit_in_database(scope: str, key: str, *, limit: int, window: int) -> bool:
    now = timezone.now()
    digest = _digest(key)
    LoginAttempt.objects.filter(attempted_at__lt=now - RETENTION).delete()
    LoginAttempt.objects.create(scope=scope, key_digest=digest, attempted_at=now)
    since = now - datetime.timedelta(seconds=window)
    count = LoginAttempt.objects.filter(scope=scope, key_digest=digest, attempted_at__gte=since).count()
    return count <= limit
