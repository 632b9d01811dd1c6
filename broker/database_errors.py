"""While the database cannot be reached, every request fails cleanly: 503, problem+json, Retry-After.

A restart or fail-over of PostgreSQL makes the queries of the requests in flight
raise `OperationalError` (or `InterfaceError` on a connection closed under them).
Without this, they are answered as a generic 500. With it, a caller is told the
service is unavailable for a moment and when to retry, with no internals; the
process itself stays up, and its next request opens a new connection
(CONN_HEALTH_CHECKS), so Tiers recovers without a restart (docs/faults.md).

The error can surface in three places, and each is covered:

- in a view: `process_exception` answers it;
- in a middleware (one that reads the session's user, say): Django has already turned
  it into a 500 by then, so the `got_request_exception` signal, which Django sends with
  the exception, marks the request, and the middleware replaces that 500 on its way out;
- in the first chunk of a streamed response (a records stream opening its cursor), which
  would otherwise escape Django to gunicorn's bare 500 page: that chunk is read here.

A stream that has already started cannot change its status: it is cut short.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, cast

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from broker.problems import API_PREFIXES, problem_response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_MARK = "_tiers_database_outage"


def is_database_outage(exception: BaseException | None) -> bool:
    """The database is unreachable or dropped the connection (not a query that is wrong)."""
    return isinstance(exception, OperationalError | InterfaceError)


def unavailable(request: HttpRequest) -> HttpResponse:
    """The answer while the database is away: a problem for the API, a short text for people."""
    if request.path.startswith(API_PREFIXES):
        response: HttpResponse = problem_response(
            503, detail="Tiers cannot reach its database for a moment; retry shortly."
        )
    else:
        # Plain text: a template's context processors might need the database themselves.
        response = HttpResponse(
            "Tiers cannot reach its database for a moment; please retry shortly.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _mark_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django sends this inside its `except` block, so the exception is the current one.
    if request is not None and is_database_outage(sys.exc_info()[1]):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_outage, dispatch_uid="tiers-database-outage")


class DatabaseUnavailableMiddleware:
    """Turns a lost database into 503; placed near the top of MIDDLEWARE to see the others' errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            logger.error("database unavailable: %s %s answered 503", request.method, request.path)
            return unavailable(request)
        if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            return self._first_chunk(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_outage(exception):
            return None
        logger.error("database unavailable: %s %s answered 503", request.method, request.path, exc_info=exception)
        return unavailable(request)

    def _first_chunk(self, request: HttpRequest, response: StreamingHttpResponse) -> HttpResponseBase:
        """Read the stream's first chunk now, while the status can still say 503."""
        if response.is_async:
            return response
        chunks = iter(cast(Iterator[bytes], response.streaming_content))
        try:
            first = next(chunks, None)
        except (OperationalError, InterfaceError) as exc:
            logger.error("database unavailable: %s %s answered 503", request.method, request.path, exc_info=exc)
            response.close()
            return unavailable(request)
        response.streaming_content = chunks if first is None else itertools.chain([first], chunks)
        return response
