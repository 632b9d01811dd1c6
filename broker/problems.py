"""RFC 9457 problem details: every API error, whoever raises it, leaves here."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from broker.errors import TiersError

PROBLEM_JSON = "application/problem+json"
API_PREFIXES = ("/api/", "/oauth/", "/.well-known/")


def problem_body(
    status: int, *, detail: str | None = None, slug: str | None = None, title: str | None = None
) -> dict[str, Any]:
    """The members every problem has; `about:blank` when the status says it all."""
    body: dict[str, Any] = {
        "type": f"{settings.TIERS_BASE_URL}/problems/{slug}" if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    return body


def problem_response(status: int, **kwargs: Any) -> JsonResponse:
    """A plain Django response carrying a problem, for errors outside DRF views."""
    extensions = kwargs.pop("extensions", {})
    return JsonResponse({**problem_body(status, **kwargs), **extensions}, status=status, content_type=PROBLEM_JSON)


def _validation_errors(data: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested validation messages into [{field, detail}]."""
    if isinstance(data, dict):
        errors: list[dict[str, str]] = []
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix
            errors.extend(_validation_errors(value, name))
        return errors
    if isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            return [{"field": prefix, "detail": str(item)} for item in data]
        errors = []
        for index, item in enumerate(data):
            errors.extend(_validation_errors(item, f"{prefix}[{index}]"))
        return errors
    return [{"field": prefix, "detail": str(data)}]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, answering problem+json."""
    if isinstance(exc, TiersError):
        body = problem_body(exc.status, detail=exc.detail, slug=exc.slug, title=exc.title)
        return Response({**body, **exc.extensions}, status=exc.status, content_type=PROBLEM_JSON)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's handler500 answers it
    if isinstance(exc, exceptions.ValidationError):
        body = problem_body(
            response.status_code,
            title="The request is not valid.",
            detail="See `errors` for what to correct.",
            slug="validation",
        )
        body["errors"] = _validation_errors(response.data)
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        body = problem_body(response.status_code, detail=str(detail) if detail else None)
    response.data = body
    response.content_type = PROBLEM_JSON
    challenge = getattr(exc, "www_authenticate", None)
    if challenge:
        response["WWW-Authenticate"] = challenge
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any path under /api/ that names no resource."""
    return problem_response(404, detail=f"No resource at {request.path}.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return problem_response(404, detail=f"No resource at {request.path}.")
    return render(request, "404.html", status=404)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return problem_response(403, detail="You may not do this.")
    return render(request, "403.html", status=403)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return problem_response(400, detail="The request could not be understood.")
    return render(request, "400.html", status=400)


def handler500(request: HttpRequest) -> HttpResponse:
    """No internals in the answer: the log has them."""
    if _is_api(request):
        return problem_response(500, detail="Tiers failed to answer; the error is logged.")
    # Rendered without the request: its context processors may be what failed.
    return HttpResponseServerError(loader.render_to_string("500.html"))
