"""Celery tasks of the trust core: thin, taking ids, owning their retries."""

from __future__ import annotations

from celery import shared_task

from broker import outbox


@shared_task(acks_late=True)
def outbox_dispatch(event_id: int) -> bool:
    """Handle one outbox event; a failure stays pending for the sweeper's next pass."""
    return outbox.dispatch(event_id)


@shared_task
def outbox_sweep() -> int:
    """Re-send outbox events whose message was lost."""
    return outbox.sweep()


@shared_task
def audit_sequence() -> int:
    """Sequence pending audit entries and sign a checkpoint."""
    from broker.audit import sequencer

    return sequencer.sequence()


@shared_task
def oauth_purge_expired() -> int:
    """Delete expired token records and used client assertions."""
    from broker.oauth import services

    return services.tokens_purge_expired()
