"""A lost database answers 503 problem+json, whichever layer met the error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core import signals
from django.core.handlers.exception import convert_exception_to_response
from django.db import OperationalError, close_old_connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from broker.database_errors import DatabaseUnavailableMiddleware


def _assert_unavailable(response: HttpResponse) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = json.loads(response.content)
    assert body["status"] == 503
    assert "psycopg" not in response.content.decode()
    assert "OperationalError" not in response.content.decode()


def test_a_view_that_loses_the_database_answers_503() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/api/v1/grants/")

    answer = middleware.process_exception(request, OperationalError("connection refused"))

    assert answer is not None
    _assert_unavailable(answer)


def test_other_errors_are_left_to_the_500_handler() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    assert middleware.process_exception(RequestFactory().get("/api/v1/"), ValueError("bug")) is None


def test_a_middleware_that_loses_the_database_answers_503_instead_of_500() -> None:
    def inner_middleware(request: HttpRequest) -> HttpResponse:
        raise OperationalError("the database system is shutting down")

    # Django turns the inner layer's error into a 500 (and sends got_request_exception) before we see it.
    middleware = DatabaseUnavailableMiddleware(convert_exception_to_response(inner_middleware))

    _assert_unavailable(middleware(RequestFactory().get("/api/v1/me/consents/")))  # type: ignore[arg-type]


@pytest.fixture
def no_connection_cleanup() -> Iterator[None]:
    """Closing the response sends request_finished; as Django's test client does, keep the test's connection."""
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_finished.connect(close_old_connections)


def test_a_stream_that_loses_the_database_before_its_first_chunk_answers_503(no_connection_cleanup: None) -> None:
    def rows() -> Iterator[bytes]:
        raise OperationalError("terminating connection due to administrator command")
        yield b""

    middleware = DatabaseUnavailableMiddleware(lambda request: StreamingHttpResponse(rows()))

    _assert_unavailable(middleware(RequestFactory().get("/api/v1/grants/x/records")))  # type: ignore[arg-type]


def test_a_healthy_stream_is_passed_on_whole() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: StreamingHttpResponse(iter([b"a\n", b"b\n"])))

    response = middleware(RequestFactory().get("/api/v1/grants/x/records"))

    assert isinstance(response, StreamingHttpResponse)
    assert b"".join(response.streaming_content) == b"a\nb\n"  # type: ignore[arg-type]
