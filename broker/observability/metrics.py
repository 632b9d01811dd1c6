"""Prometheus metrics: counters the code increments, and gauges read from the database at scrape.

Counters live in the process that counts. Under gunicorn, several worker processes count
apart: with PROMETHEUS_MULTIPROC_DIR set (before the process starts), each writes its
values to files there and a scrape sums them. The gauges (outbox, sequencer, dead letters)
are computed by the scraping process from the database, the one truth all processes share.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import requests
from django.db.models import Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

HTTP_REQUESTS = Counter(
    "tiers_http_requests",
    "HTTP requests answered, by method, route (the URL pattern's name) and status class.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "tiers_http_request_duration_seconds",
    "Time to the response's headers, by method and route (a stream's body is not counted).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TOKENS_ISSUED = Counter(
    "tiers_tokens_issued", "OAuth access tokens issued, by client authentication method.", ["auth_method"]
)
RECORDS_DELIVERED = Counter(
    "tiers_records_delivered",
    "Records delivered under grants: hosted (streamed by Tiers) or federated (receipts of holders).",
    ["kind"],
)
CONSENT_CHANGES = Counter("tiers_consent_changes", "Consent events committed, by event.", ["event"])
WEBHOOK_FAILURES = Counter("tiers_webhook_failures", "Failed webhook delivery attempts, by reason.", ["reason"])

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    """A method outside the usual ones is "other": callers do not choose the label set."""
    return method if method in HTTP_METHODS else "other"


def webhook_failure_reason(status: int | None, error: str, *, final: bool = False) -> str:
    """A bounded reason for a failed attempt: disabled, refused, timeout, network or http_<n>xx."""
    if final:
        return "disabled"
    if status is not None:
        return f"http_{status // 100}xx"
    name = error.split(":", 1)[0]
    exception = getattr(requests.exceptions, name, None)
    if isinstance(exception, type) and issubclass(exception, requests.RequestException):
        return "timeout" if issubclass(exception, requests.Timeout) else "network"
    return "refused"  # not https, or resolves to a non-public address: nothing was sent


# --- gauges computed at scrape -------------------------------------------------------------------


def _age(oldest: datetime | None, now: datetime) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


class DatabaseCollector(Collector):
    """Lags and backlogs, read from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        from broker.models import AuditEntry, OutboxEvent
        from broker.webhooks.models import WebhookDelivery

        now = timezone.now()
        waiting = OutboxEvent.objects.filter(handled_at__isnull=True, quarantined_at__isnull=True)
        outbox = waiting.aggregate(oldest=Min("created_at"))
        pending = waiting.count()
        unsequenced = AuditEntry.objects.filter(leaf_index__isnull=True).aggregate(oldest=Min("created_at"))
        dead = WebhookDelivery.objects.filter(state=WebhookDelivery.State.DEAD).count()
        yield GaugeMetricFamily(
            "tiers_outbox_lag_seconds",
            "Age of the oldest outbox event not handled yet (0: none waiting).",
            value=_age(outbox["oldest"], now),
        )
        yield GaugeMetricFamily("tiers_outbox_pending", "Outbox events not handled yet.", value=pending)
        yield GaugeMetricFamily(
            "tiers_sequencer_lag_seconds",
            "Age of the oldest audit entry without a leaf index in the transparency log (0: none).",
            value=_age(unsequenced["oldest"], now),
        )
        yield GaugeMetricFamily(
            "tiers_webhook_dead_letters",
            "Webhook deliveries dead (not delivered in time), waiting for a replay.",
            value=dead,
        )


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _counters_registry() -> CollectorRegistry:
    """The counters of every process of this server (multiprocess mode), or of this one."""
    if not multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    """The text a scrape of /metrics answers: counters, then the database's gauges."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    return generate_latest(_counters_registry()) + generate_latest(database)


def serve_worker_metrics(port: int) -> None:
    """A Celery worker's counters (webhook failures, consent expiries) on their own port."""
    start_http_server(port, registry=_counters_registry())
