"""Celery tasks of webhooks: thin, taking ids; the retries live in the rows, not in Celery."""

from __future__ import annotations

from celery import shared_task

from broker.webhooks import delivery


@shared_task(acks_late=True)
def webhook_deliver(delivery_id: str) -> str:
    """Make one attempt at a webhook delivery; skipped if another worker holds it or it is not due."""
    return delivery.deliver(delivery_id).result


@shared_task
def webhooks_retry() -> int:
    """Queue the deliveries whose next attempt is due, and those a dead worker left behind."""
    return delivery.requeue_due()
