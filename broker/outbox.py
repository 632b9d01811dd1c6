"""The transactional outbox: consequences that must survive a crash or a Redis outage.

A service calls `emit()` inside its transaction; the event row commits with the
change or not at all. After the commit, the relay asks a worker to handle it.
If that message is lost (the process died, Redis was down), the scheduled
sweeper finds the event still unhandled and sends it again. A worker claims an
event with `SELECT … FOR UPDATE SKIP LOCKED` and a lease, so two workers never
handle it at the same time and never wait on each other, and a worker that dies
leaves an event the sweeper hands on. Handlers must be idempotent: an event may
be handled more than once, never zero times.

An event that fails `OUTBOX_MAX_ATTEMPTS` times, or whose handler kills its
worker that often, is quarantined: taken out of the queue with `quarantined_at` set and its
last error kept, so that one poison event cannot
occupy the workers for ever. An operator reads it, fixes the cause and re-queues
it with `requeue()`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
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


def relay(event_id: int) -> bool:
    """Hand an event to a worker; if the broker is down, the sweeper will do it later."""
    from broker.tasks import outbox_dispatch

    try:
        outbox_dispatch.delay(event_id)
    except Exception:
        logger.warning("outbox event %s not relayed now; the sweeper will resend it", event_id)
        return False
    return True


def _due(now: datetime) -> QuerySet[OutboxEvent]:
    """Unhandled events that nobody holds: never leased, or whose lease (or backoff) has run out."""
    return OutboxEvent.objects.filter(handled_at__isnull=True, quarantined_at__isnull=True).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    )


def _claim(event_id: int) -> OutboxEvent | None:
    """Lock the event if it is due and free, and lease it; None if another worker has it or it is done."""
    now = timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: a worker that meets an event another worker is claiming moves on at once.
        event = _due(now).select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None:
            return None
        if event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            # Claimed that many times and never finished: its handler fails or kills the worker.
            _quarantine(event, now, f"{event.attempts} attempts without success; last error: {event.last_error}")
            return None
        event.attempts += 1
        event.leased_until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        event.save(update_fields=["attempts", "leased_until"])
    return event


def _quarantine(event: OutboxEvent, now: datetime, reason: str) -> None:
    """Take a poison event out of the queue, visibly; `requeue()` puts it back."""
    OutboxEvent.objects.filter(pk=event.pk).update(quarantined_at=now, leased_until=None, last_error=reason[:2000])
    logger.error("outbox event %s (%s) quarantined: %s", event.pk, event.topic, reason)


def dispatch(event_id: int) -> bool:
    """Claim one event, run its handler, and mark it handled. False if not claimed."""
    event = _claim(event_id)
    if event is None:
        return False
    try:
        _handlers[event.topic](event)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            _quarantine(event, timezone.now(), f"{event.attempts} attempts failed; last error: {error}")
            raise
        # Not again before a backoff that grows with each attempt; the sweeper retries.
        delay = min(3600, 2**event.attempts) * (0.5 + random.random())  # noqa: S311 (jitter)
        OutboxEvent.objects.filter(pk=event_id).update(
            leased_until=timezone.now() + timedelta(seconds=delay), last_error=error[:2000]
        )
        raise
    OutboxEvent.objects.filter(pk=event_id).update(handled_at=timezone.now(), leased_until=None, last_error="")
    return True


def sweep(limit: int = 5000, batch: int = 500) -> int:
    """Re-send the events a lost message or a dead worker left behind, in batches; returns how many."""
    stale = timezone.now() - timedelta(seconds=settings.OUTBOX_RESEND_AFTER_SECONDS)
    sent = 0
    after = 0
    while sent < limit:
        now = timezone.now()
        with transaction.atomic():
            # Locked while read, so that two sweepers running at once take different batches.
            ids = list(
                _due(now)
                .filter(Q(leased_until__isnull=False) | Q(created_at__lt=stale))
                .filter(pk__gt=after)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)[: min(batch, limit - sent)]
            )
        for event_id in ids:
            if not relay(event_id):
                return sent  # the broker is down: the next sweep tries again
            sent += 1
        if len(ids) < batch:
            break
        after = ids[-1]
    return sent


def quarantined() -> QuerySet[OutboxEvent]:
    """Events taken out of the queue after too many attempts."""
    return OutboxEvent.objects.filter(quarantined_at__isnull=False, handled_at__isnull=True)


def requeue(event_id: int) -> bool:
    """Put a quarantined event back in the queue with a fresh count, once its cause is fixed."""
    requeued = quarantined().filter(pk=event_id).update(quarantined_at=None, leased_until=None, attempts=0)
    if requeued:
        transaction.on_commit(lambda: relay(event_id), robust=True)
    return bool(requeued)
