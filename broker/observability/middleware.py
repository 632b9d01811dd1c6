"""Every request gets an id (echoed in X-Request-ID, bound to its log lines) and is counted."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from broker.observability import metrics

HEADER = "X-Request-ID"
# A caller's id is kept only when it cannot inject anything into a header or a log line.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_log = logging.getLogger("tiers.http")


def request_id_from(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is a safe token, else a new uuid4."""
    incoming = request.headers.get(HEADER, "")
    return incoming if SAFE_REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name, never the raw path: ids and tokens in paths make no label."""
    match = getattr(request, "resolver_match", None)
    return (match.view_name or "unnamed") if match is not None else "unmatched"


def _forget_request(**kwargs: object) -> None:
    # After the response is closed (a stream's last byte): Django's own 4xx/5xx lines, logged
    # once this middleware has returned, still carry the id.
    structlog.contextvars.clear_contextvars()


class RequestObservabilityMiddleware:
    """First in MIDDLEWARE, so that its id and its clock cover every other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        request_finished.connect(_forget_request, dispatch_uid="tiers.observability.forget_request")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        response[HEADER] = request_id
        method, route = metrics.method_label(request.method), route_of(request)
        metrics.HTTP_REQUESTS.labels(method=method, route=route, status=f"{response.status_code // 100}xx").inc()
        metrics.HTTP_LATENCY.labels(method=method, route=route).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
        return response
