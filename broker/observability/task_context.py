"""The request id travels with the tasks a request publishes, so a worker's lines name it too.

Publishing puts the id bound in the caller's context into the message headers; the worker
binds it before the task runs and clears it after. A task published by a task keeps the id;
a task from celery beat has none (its lines say request_id null, and name the task).
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import signals

HEADER = "tiers_request_id"


def on_publish(sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """before_task_publish: copy the caller's request id into the task's headers."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


def request_id_of(task: Any) -> str | None:
    """The request id a task's message carried, wherever this Celery version put its headers."""
    request = getattr(task, "request", None)
    value = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    return str(value) if value else None


def on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """task_prerun: bind the message's request id, the task's name and id for the task's lines."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return  # run inline by the demo: the request's own context is already bound
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=request_id_of(task), task=getattr(task, "name", None), task_id=task_id
    )


def on_postrun(task: Any = None, **kwargs: Any) -> None:
    """task_postrun: nothing of this task leaks into the next one's lines."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        structlog.contextvars.clear_contextvars()


def keep_our_logging(**kwargs: Any) -> None:
    """setup_logging: with a receiver, Celery leaves the root logger as Django configured it."""


def start_worker_metrics(**kwargs: Any) -> None:
    """worker_init: serve the worker's counters on TIERS_WORKER_METRICS_PORT, when set."""
    from django.conf import settings

    from broker.observability import metrics

    if settings.TIERS_WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(settings.TIERS_WORKER_METRICS_PORT)


def connect() -> None:
    """Connect the hooks (weakly held by nobody: module functions, connected once)."""
    signals.before_task_publish.connect(on_publish, weak=False, dispatch_uid="tiers.request_id.publish")
    signals.task_prerun.connect(on_prerun, weak=False, dispatch_uid="tiers.request_id.prerun")
    signals.task_postrun.connect(on_postrun, weak=False, dispatch_uid="tiers.request_id.postrun")
    signals.setup_logging.connect(keep_our_logging, weak=False, dispatch_uid="tiers.logging")
    signals.worker_init.connect(start_worker_metrics, weak=False, dispatch_uid="tiers.worker_metrics")
