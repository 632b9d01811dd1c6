"""Logs, request ids and metrics: what operators see of a running Tiers (docs/observability.md).

`setup()` is Django's LOGGING_CONFIG: Django calls it once in every process it starts (web,
Celery worker and beat, manage.py), so logging and the Celery hooks that carry the request id
into tasks are in place before the first line is logged or the first task published.
"""

from __future__ import annotations

from typing import Any


def setup(logging_settings: dict[str, Any]) -> None:
    """Configure structlog and stdlib logging from settings.LOGGING, and hook Celery's signals."""
    from broker.observability import logs, task_context

    logs.configure(logging_settings)
    task_context.connect()
