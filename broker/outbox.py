"""The transactional outbox: consequences that must survive a crash or a Redis outage.

A service calls `emit()` inside its transaction; the event row commits with the
change or not at all. After the commit, the relay asks a worker to handle it.
If that message is lost (the process died, Redis was down), the scheduled
sweeper finds the event still unhandled and sends it again. A worker claims an
event with an atomic UPDATE and a lease, so two workers never handle it at the
same time, and a worker that dies leaves an event the sweeper hands on. Handlers
must be idempotent: an event may be handled more than once, never zero times.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from broker.models import OutboxEvent

Handler = Callable[[OutboxEvent], None]

logger = logging.getLogger(__name__)
_handlers: dict[str, Handler] = {}


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that handles events of one topic."""

    def register(function: Handler) -> Handler:
        if topic in _handlers:
            raise ValueError(f"outbox topic {topic!r} already has a handler")
        _handlers[topic] = function
        return function

    return register


def emit(topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Write an event in the caller's transaction and relay it once that commits."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox.emit() must run inside the transaction of the change it follows")
    if topic not in _handlers:
        raise ValueError(f"outbox topic {topic!r} has no handler")
    event = OutboxEvent.objects.create(topic=topic, payload=payload)
    transaction.on_commit(lambda: relay(event.pk), robust=True)
    return event


def relay(event_id: int) -> None:
    """Hand an event to a worker; if the broker is down, the sweeper will do it later."""
    from broker.tasks import outbox_dispatch

    try:
        outbox_dispatch.delay(event_id)
    except Exception:
        logger.warning("outbox event %s not relayed now; the sweeper will resend it", event_id)


def dispatch(event_id: int) -> bool:
    """Claim one event, run its handler, and mark it handled. False if not claimed."""
    now = timezone.now()
    claimed = (
        OutboxEvent.objects.filter(pk=event_id, handled_at__isnull=True)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(
            leased_until=now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return False
    event = OutboxEvent.objects.get(pk=event_id)
    try:
        _handlers[event.topic](event)
    except Exception as exc:
        # Not again before a backoff that grows with each attempt; the sweeper retries.
        delay = min(3600, 2**event.attempts) * (0.5 + random.random())  # noqa: S311 (jitter)
        OutboxEvent.objects.filter(pk=event_id).update(
            leased_until=timezone.now() + timedelta(seconds=delay),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    OutboxEvent.objects.filter(pk=event_id).update(handled_at=timezone.now(), leased_until=None, last_error="")
    return True


def sweep(limit: int = 500) -> int:
    """Re-send the events a lost message or a dead worker left behind."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_RESEND_AFTER_SECONDS)
    pending = (
        OutboxEvent.objects.filter(handled_at__isnull=True)
        .filter(Q(leased_until__isnull=True, created_at__lt=stale) | Q(leased_until__lt=now))
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(pending)
    for event_id in ids:
        relay(event_id)
    return len(ids)
