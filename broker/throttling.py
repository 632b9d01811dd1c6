"""API rate limits by caller: a person by account, an organisation's software by OAuth client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import throttling

from broker.oauth.tokens import Caller

if TYPE_CHECKING:  # DRF imports this module while loading its own views
    from rest_framework.request import Request
    from rest_framework.views import APIView


class CallerRateThrottle(throttling.UserRateThrottle):
    """Per-user limits that count each OAuth client apart (an OAuth client is no user: it has no pk)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, Caller):
            return self.cache_format % {"scope": self.scope, "ident": f"client:{request.auth.client.client_id}"}
        return super().get_cache_key(request, view)
