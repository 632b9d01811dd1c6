"""The raw Redis client behind Django's cache, for what the cache API cannot do in one round trip."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache


def raw_redis(key: str = "") -> Any:
    """The redis.Redis client of the cache, or None when the cache is not Redis (the demo)."""
    backend = getattr(cache, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    return get_client(key, write=True) if get_client else None
