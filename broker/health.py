"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import resolve
from django.views.decorators.cache import never_cache

from broker.problems import problem_response
from broker.redis_client import redis_client

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and answering; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _database_ready() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


def _redis_ready() -> bool:
    try:
        client = redis_client(socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        logger.warning("readiness: Redis unreachable", exc_info=True)
        return False


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """The database and, when configured, Redis answer: this process can serve."""
    checks = {"database": _database_ready()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ready()
    if all(checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return problem_response(503, detail=f"Not ready: {failing} unreachable.", extensions={"checks": checks})


class ProbeMiddleware:
    """Answers /healthz and /readyz before anything checks the Host header.

    Orchestrators probe a pod at its own address, which is no name in ALLOWED_HOSTS:
    the probes say nothing about any tenant and read no request data, so they need
    no host check, redirect or session.
    """

    PROBES = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            request.resolver_match = resolve(request.path_info)  # for the metrics' route name
            return probe(request)
        return self.get_response(request)
