"""Logs, request ids and metrics: what operators see, and what they never see."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from broker.celery import app
from broker.models import OutboxEvent
from broker.observability import metrics, task_context
from broker.observability.logs import StructuredFormatter
from consent import services as consent
from consent.models import ConsentRecord
from tests.sharing.test_demo import grant_token, read

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines logged while the test runs, as the production formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(StructuredFormatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        structlog.contextvars.clear_contextvars()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- request ids ---------------------------------------------------------------------------------


def test_every_response_carries_a_new_request_id(api: APIClient) -> None:
    first, second = api.get("/healthz"), api.get("/healthz")
    assert UUID4.fullmatch(first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_safe_incoming_request_id_is_echoed(api: APIClient) -> None:
    assert api.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.2_b")["X-Request-ID"] == "lb-7f3a.2_b"


@pytest.mark.parametrize("unsafe", ["<script>", "a b", "x" * 65, "id;drop", "é"])
def test_an_unsafe_incoming_request_id_is_replaced(api: APIClient, unsafe: str) -> None:
    answered = api.get("/healthz", HTTP_X_REQUEST_ID=unsafe)["X-Request-ID"]
    assert UUID4.fullmatch(answered)


@pytest.mark.django_db
def test_a_line_logged_during_a_request_is_json_with_its_request_id(
    api: APIClient, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    answer = api.get("/api/v1/organisations/me", HTTP_AUTHORIZATION="Bearer not-a-token", HTTP_X_REQUEST_ID="req-42")
    assert answer.status_code == 401
    lines = log_lines()
    refused = next(line for line in lines if line["logger"] == "tiers.security")
    assert refused["request_id"] == "req-42"
    assert list(refused)[:5] == ["timestamp", "level", "logger", "event", "request_id"]
    assert refused["level"] == "warning"
    access = next(line for line in lines if line["logger"] == "tiers.http")
    assert access["request_id"] == "req-42"
    assert access["route"] == "organisation-me"
    assert access["status"] == 401
    assert "not-a-token" not in json.dumps(lines)


def test_the_configured_root_handler_writes_structured_lines() -> None:
    assert any(isinstance(handler.formatter, StructuredFormatter) for handler in logging.getLogger().handlers)


def test_a_line_outside_any_request_has_a_null_request_id(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    logging.getLogger("tiers.test").info("outside")
    assert log_lines()[-1]["request_id"] is None


# --- the request id in Celery tasks --------------------------------------------------------------


class StubProducer:
    """Stands in for kombu's producer: keeps what Celery would have sent to Redis."""

    def __init__(self) -> None:
        self.connection = self
        self.sent: list[dict[str, Any]] = []

    def _reraise_as_library_errors(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def publish(self, body: Any, **options: Any) -> None:
        self.sent.append(options)


def test_a_task_published_during_a_request_carries_its_request_id() -> None:
    producer = StubProducer()
    structlog.contextvars.bind_contextvars(request_id="req-7")
    try:
        app.send_task("broker.tasks.outbox_sweep", producer=producer)
    finally:
        structlog.contextvars.clear_contextvars()
    assert producer.sent[0]["headers"][task_context.HEADER] == "req-7"


def test_a_task_published_outside_a_request_carries_none() -> None:
    producer = StubProducer()
    app.send_task("broker.tasks.outbox_sweep", producer=producer)
    assert task_context.HEADER not in producer.sent[0]["headers"]


def test_the_worker_binds_the_tasks_request_id_and_forgets_it_after(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    task = app.tasks["broker.tasks.outbox_sweep"]
    task.push_request(id="task-1", **{task_context.HEADER: "req-9"})
    try:
        task_context.on_prerun(task_id="task-1", task=task)
        logging.getLogger("tiers.test").info("inside the task")
        task_context.on_postrun(task_id="task-1", task=task)
        logging.getLogger("tiers.test").info("after the task")
    finally:
        task.pop_request()
    inside, after = log_lines()[-2:]
    assert (inside["request_id"], inside["task"], inside["task_id"]) == ("req-9", "broker.tasks.outbox_sweep", "task-1")
    assert after["request_id"] is None
    assert "task" not in after


# --- what is never logged ------------------------------------------------------------------------


def test_secrets_and_personal_data_are_masked(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    payload = {"password": "hunter2", "token": "tok-123", "email": "alice@example.org", "purpose": "dpv:Health"}
    logging.getLogger("tiers.test").warning("payload %s", payload, extra={"client_secret": "cs-456"})
    logging.getLogger("tiers.test").info("sent", extra={"details": {"nested": {"Authorization": "Bearer abc.def"}}})
    structlog.get_logger("tiers.test").info(
        "login", password="hunter2", subject_ref="cust-0042", code="redeem-789", note="mail bob@example.org"
    )
    text = json.dumps(log_lines())
    for secret in ("hunter2", "tok-123", "alice@example.org", "cs-456", "abc.def", "cust-0042", "redeem-789", "bob@"):
        assert secret not in text
    assert "dpv:Health" in text  # what is not secret stays readable
    assert "[masked]" in text


def test_djangos_request_object_is_not_rendered(log_lines: Callable[[], list[dict[str, Any]]], api: APIClient) -> None:
    api.get("/accounts/oidc/nobody/callback?code=authz-code-1&state=s")
    text = json.dumps(log_lines())
    assert "authz-code-1" not in text


# --- /metrics ------------------------------------------------------------------------------------

METRIC_NAMES = (
    "tiers_http_requests_total",
    "tiers_http_request_duration_seconds",
    "tiers_tokens_issued_total",
    "tiers_records_delivered_total",
    "tiers_consent_changes_total",
    "tiers_outbox_lag_seconds",
    "tiers_outbox_pending",
    "tiers_sequencer_lag_seconds",
    "tiers_webhook_failures_total",
    "tiers_webhook_dead_letters",
)


def scrape(api: APIClient, **headers: str) -> dict[str, Any]:
    answer = api.get("/metrics", **headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(answer.content.decode())}


@pytest.mark.django_db
def test_metrics_from_loopback_without_a_token_answer_the_prometheus_format(api: APIClient) -> None:
    api.get("/healthz")
    text = api.get("/metrics").content.decode()
    for name in METRIC_NAMES:
        assert name in text
    families = scrape(api)
    assert families["tiers_outbox_lag_seconds"].type == "gauge"
    requests = families["tiers_http_requests"].samples
    assert any(s.labels == {"method": "GET", "route": "healthz", "status": "2xx"} for s in requests)


@pytest.mark.django_db
def test_an_unmatched_path_is_counted_as_unmatched_not_by_its_path(api: APIClient) -> None:
    before = sample("tiers_http_requests_total", method="GET", route="unmatched", status="4xx")
    api.get("/no-such-page-4c1d")
    assert sample("tiers_http_requests_total", method="GET", route="unmatched", status="4xx") == before + 1
    assert "no-such-page" not in api.get("/metrics").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"REMOTE_ADDR": "203.0.113.5"}, {"HTTP_X_FORWARDED_FOR": "203.0.113.5"}],
    ids=["remote", "through-a-proxy"],
)
def test_metrics_without_a_token_are_hidden_from_anyone_else(api: APIClient, headers: dict[str, str]) -> None:
    assert api.get("/metrics", **headers).status_code == 404


@pytest.mark.django_db
def test_metrics_with_a_token_answer_only_its_bearer(api: APIClient, settings: Any) -> None:
    settings.TIERS_METRICS_TOKEN = "scrape-token-0123456789"
    assert api.get("/metrics").status_code == 404  # loopback is not enough any more
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 404
    assert api.get("/metrics", HTTP_AUTHORIZATION="Basic scrape-token-0123456789").status_code == 404
    scrape(api, HTTP_AUTHORIZATION="Bearer scrape-token-0123456789", REMOTE_ADDR="10.0.0.9")


@pytest.mark.django_db
def test_metrics_are_not_posted_to(api: APIClient) -> None:
    assert api.post("/metrics").status_code == 404


@pytest.mark.django_db
def test_outbox_lag_is_the_age_of_the_oldest_unhandled_event(api: APIClient) -> None:
    now = timezone.now()
    OutboxEvent.objects.create(topic="test.old", created_at=now - datetime.timedelta(seconds=120))
    OutboxEvent.objects.create(topic="test.done", created_at=now - datetime.timedelta(hours=1), handled_at=now)
    families = scrape(api)
    assert families["tiers_outbox_lag_seconds"].samples[0].value >= 120
    assert families["tiers_outbox_lag_seconds"].samples[0].value < 3600
    assert families["tiers_outbox_pending"].samples[0].value >= 1


# --- counters from the services ------------------------------------------------------------------


@pytest.fixture
def credentials(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    call_command("seed_demo")
    return dict(json.loads(settings.DEMO_CREDENTIALS_FILE.read_text()))


@pytest.mark.django_db
def test_issuing_a_token_and_reading_a_grant_are_counted(
    credentials: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    lab = next(g["id"] for g in credentials["grants"] if g["organisation"] == "labo-mobilites")
    tokens_before = sample("tiers_tokens_issued_total", auth_method="client_secret_basic")
    records_before = sample("tiers_records_delivered_total", kind="hosted")
    token = grant_token(credentials, "labo-mobilites", lab)
    status, records = read(token, lab)
    assert status == 200
    assert sample("tiers_tokens_issued_total", auth_method="client_secret_basic") == tokens_before + 1
    assert sample("tiers_records_delivered_total", kind="hosted") == records_before + len(records)

    chloe = ConsentRecord.objects.get(
        citizen__username="chloe", holder__slug="ligne-bleue", purpose="dpv:NonCommercialResearch"
    )
    withdrawals_before = sample("tiers_consent_changes_total", event="withdrawn")
    with django_capture_on_commit_callbacks(execute=True):
        consent.consent_withdraw(citizen=chloe.citizen, record=chloe)
    assert sample("tiers_consent_changes_total", event="withdrawn") == withdrawals_before + 1


@pytest.mark.parametrize(
    ("status", "error", "final", "reason"),
    [
        (503, "HTTP 503 Service Unavailable", False, "http_5xx"),
        (None, "ConnectTimeout: timed out", False, "timeout"),
        (None, "ConnectionError: refused", False, "network"),
        (None, "example.org resolves to a non-public address (10.0.0.1)", False, "refused"),
        (None, "the endpoint is disabled", True, "disabled"),
    ],
)
def test_webhook_failures_have_a_bounded_reason(status: int | None, error: str, final: bool, reason: str) -> None:
    assert metrics.webhook_failure_reason(status, error, final=final) == reason
