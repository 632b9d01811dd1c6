"""Outbox handlers that fan consent changes out to webhooks. Idempotent: one row per endpoint, event and type."""

from __future__ import annotations

from django.db import transaction

from broker import outbox
from broker.models import OutboxEvent
from broker.webhooks import fanout


# A withdrawal or a pause writes its deliveries in its own transaction (consent/services.py);
# handling the event again adds none. An expiry is fanned out here, from the expiry job's event.
@outbox.handler("consent.withdrawn")
def consent_withdrawn(event: OutboxEvent) -> None:
    """Tell the holder and the data users holding grants for that purpose."""
    with transaction.atomic():
        fanout.consent_event(event, "withdrawn")


@outbox.handler("consent.paused")
def consent_paused(event: OutboxEvent) -> None:
    """Tell the holder and the data users holding grants for that purpose."""
    with transaction.atomic():
        fanout.consent_event(event, "paused")


@outbox.handler("consent.expired")
def consent_expired(event: OutboxEvent) -> None:
    """Tell the holder and the data users holding grants for that purpose."""
    with transaction.atomic():
        fanout.consent_event(event, "expired")
