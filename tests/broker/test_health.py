"""Liveness and readiness probes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_healthz_answers_while_the_process_lives(api: APIClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_redis(api: APIClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "redis": True}


@pytest.mark.django_db
def test_readyz_is_a_503_problem_when_redis_is_unreachable(api: APIClient, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["checks"] == {"database": True, "redis": False}
    assert "redis" in body["detail"]


@pytest.mark.django_db
def test_probes_answer_at_a_pods_own_address_which_is_no_allowed_host(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz", HTTP_HOST="10.42.3.17:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.42.3.17:8000").status_code == 200
    assert client.get("/api/v1/register", HTTP_HOST="10.42.3.17:8000").status_code == 400  # everything else checks
