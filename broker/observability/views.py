"""GET /metrics: Prometheus' text format, for the scraper alone."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST

from broker.observability import metrics

LOOPBACK = frozenset({"127.0.0.1", "::1"})


def scrape_allowed(request: HttpRequest) -> bool:
    """With a token, only its bearer; without one, only a direct call from this machine.

    A request that went through a proxy (it carries X-Forwarded-For) is never "from this
    machine", even when the proxy itself connects from 127.0.0.1.
    """
    token: str = settings.TIERS_METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return request.META.get("REMOTE_ADDR") in LOOPBACK and "HTTP_X_FORWARDED_FOR" not in request.META


@csrf_exempt  # a GET, and no session: nothing for CSRF to protect; said explicitly
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Metrics for Prometheus; anyone else gets the 404 of a path that does not exist."""
    if request.method not in ("GET", "HEAD") or not scrape_allowed(request):
        raise Http404
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
