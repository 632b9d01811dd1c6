"""Request plumbing shared by every view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class TrustedProxyMiddleware:
    """Behind TLS-terminating proxies, the caller's address is in X-Forwarded-For, not REMOTE_ADDR.

    Only the hops the operator declares (TIERS_TRUSTED_PROXY_HOPS) are trusted: each appends
    the address it received the request from, so the caller is that many entries from the right.
    Anything a client wrote further left is ignored. Per-address limits depend on this.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hops: int = settings.TIERS_TRUSTED_PROXY_HOPS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.hops:
            forwarded = [
                part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
            ]
            if len(forwarded) >= self.hops:
                request.META["REMOTE_ADDR"] = forwarded[-self.hops]
        return self.get_response(request)
