"""API rate limits by caller: a person by account, an organisation's software by OAuth client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rest_framework import throttling

from broker.oauth.tokens import Caller

if TYPE_CHECKING:  # DRF imports this module while loading its own views
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class FailOpen:
    """The counts live in Redis; while it is down the request is allowed and the miss logged, as in
    `broker.ratelimit`: a limit must not turn a Redis outage into a refusal of service (docs/faults.md).
    """

    scope: str | None

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception:
            logger.warning("API rate limit %s not enforced: cache unavailable", self.scope)
            return True


class AnonymousRateThrottle(FailOpen, throttling.AnonRateThrottle):
    """Per-address limits for callers who are not logged in."""


class CallerRateThrottle(FailOpen, throttling.UserRateThrottle):
    """Per-user limits that count each OAuth client apart (an OAuth client is no user: it has no pk)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, Caller):
            return self.cache_format % {"scope": self.scope, "ident": f"client:{request.auth.client.client_id}"}
        return super().get_cache_key(request, view)
