"""Outbox handlers of data sharing. Each is idempotent: an event may arrive twice."""

from __future__ import annotations

from django.db import transaction

from broker import outbox
from broker.models import OutboxEvent
from broker.webhooks import fanout
from sharing import ingest


@outbox.handler("sharing.upload_received")
def load_upload(event: OutboxEvent) -> None:
    """Check and load an upload; a second run finds it finished and does nothing."""
    ingest.ingest(event.payload["upload"])


@outbox.handler("sharing.data_key_rotated")
def reencrypt_records(event: OutboxEvent) -> None:
    """Move the dataset's records to the new data key, batch by batch."""
    ingest.reencrypt(event.payload["dataset"], int(event.payload["version"]))


# Grants and agreements are told to the organisations concerned by signed webhooks
# (docs/webhooks.md); a second run of a handler writes no second delivery.
_GRANT_EVENTS = {
    "sharing.grant_approved": "grant-approved",
    "sharing.grant_revoked": "grant-revoked",
    "sharing.grant_expired": "grant-expired",
}


@outbox.handler("sharing.grant_approved")
@outbox.handler("sharing.grant_revoked")
@outbox.handler("sharing.grant_expired")
def tell_grant_change(event: OutboxEvent) -> None:
    """Tell the grant's data user and the holder."""
    with transaction.atomic():
        fanout.grant_event(event, _GRANT_EVENTS[event.topic])


@outbox.handler("sharing.agreement_terminated")
def tell_agreement_terminated(event: OutboxEvent) -> None:
    """Tell the holder and the data users whose grants it covered."""
    with transaction.atomic():
        fanout.agreement_terminated(event)


@outbox.handler("sharing.delivery_recorded")
def tell_delivery_recorded(event: OutboxEvent) -> None:
    """Tell the holder that its data was read (hosted) or reported delivered (federated)."""
    with transaction.atomic():
        fanout.delivery_recorded(event)
