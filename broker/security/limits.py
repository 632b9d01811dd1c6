"""Request bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE are refused before anything reads them.

DRF reads a JSON body from the request stream itself, so Django's own check (which guards
`request.body` and `request.POST`) does not protect the API; this one does, from the
Content-Length. Uploads stream to disk and have their own limit (TIERS_UPLOAD_MAX_BYTES).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from broker.problems import API_PREFIXES, problem_response

STREAMED_PATHS = re.compile(r"^/api/v1/datasets/[^/]+/uploads/$")


class RequestSizeLimitMiddleware:
    """413 (problem+json on the API) for a declared body over the limit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is None or length <= limit or STREAMED_PATHS.match(request.path):
            return self.get_response(request)
        detail = f"The request body is larger than {limit} bytes."
        if request.path.startswith(API_PREFIXES):
            return problem_response(413, detail=detail, slug="request-too-large")
        return HttpResponse(detail, status=413, content_type="text/plain; charset=utf-8")
