"""Every API error is an RFC 9457 problem, and the API's base plumbing works."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import path
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from broker import problems
from broker.urls import urlpatterns as broker_urlpatterns
from tests.conftest import client_for
from tests.factories import OrganisationFactory

PROBLEM = "application/problem+json"


def boom(request: object) -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


urlpatterns = [path("api/v1/boom", boom), *broker_urlpatterns]
handler500 = problems.handler500


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert "type" in body
    return body


@pytest.mark.django_db
def test_unknown_api_path_is_a_problem_404(api: APIClient) -> None:
    body = assert_problem(api.get("/api/v1/no-such-thing/"), 404)
    assert "/api/v1/no-such-thing/" in body["detail"]


@pytest.mark.django_db
def test_unknown_path_outside_api_is_an_html_page(api: APIClient) -> None:
    response = api.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_wrong_method_is_a_problem_405(api: APIClient) -> None:
    assert_problem(api.delete("/api/v1/organisations/"), 405)


@pytest.mark.django_db
def test_anonymous_caller_of_a_private_endpoint_gets_a_problem(api: APIClient) -> None:
    response = api.get("/api/v1/organisations/me")
    body = assert_problem(response, 401)
    assert "credentials" in body["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="tiers"'


def test_validation_error_lists_each_field(holder_admin) -> None:  # type: ignore[no-untyped-def]
    response = client_for(holder_admin).patch(
        "/api/v1/organisations/me", {"contact_email": "not-an-address"}, format="json"
    )
    body = assert_problem(response, 400)
    assert body["errors"] == [{"field": "contact_email", "detail": "Enter a valid email address."}]


def test_malformed_json_is_a_problem_400(holder_admin) -> None:  # type: ignore[no-untyped-def]
    response = client_for(holder_admin).generic(
        "PATCH", "/api/v1/organisations/me", "{not json", content_type="application/json"
    )
    assert_problem(response, 400)


@pytest.mark.django_db
def test_throttled_caller_gets_a_problem_429_with_retry_after(api: APIClient, settings) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.throttling import AnonRateThrottle

    cache.clear()
    original = AnonRateThrottle.THROTTLE_RATES
    AnonRateThrottle.THROTTLE_RATES = {**original, "anon": "2/min"}
    try:
        statuses = [api.get("/api/v1/organisations/").status_code for _ in range(3)]
        response = api.get("/api/v1/organisations/")
    finally:
        AnonRateThrottle.THROTTLE_RATES = original
        cache.clear()
    assert statuses[:2] == [200, 200]
    assert_problem(response, 429)
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db
@pytest.mark.urls("tests.broker.test_api_problems")
def test_server_error_is_a_problem_500_without_internals() -> None:
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["detail"]


@pytest.mark.django_db
def test_schema_is_a_valid_openapi_3_document(api: APIClient) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    assert "/api/v1/organisations/me" in schema["paths"]


@pytest.mark.django_db
def test_interactive_docs_load_their_assets_locally(api: APIClient) -> None:
    response = api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    assert "cdn" not in html.lower()


@pytest.mark.django_db
def test_public_register_pages_with_a_cursor(api: APIClient) -> None:
    slugs = sorted(OrganisationFactory().slug for _ in range(5))
    seen: list[str] = []
    url: str | None = "/api/v1/organisations/?page_size=2"
    while url:
        page = api.get(url).json()
        seen.extend(item["slug"] for item in page["results"])
        url = page["next"]
        assert "cursor=" in (url or "cursor=")
    assert seen == slugs
