"""Outbox handlers of data sharing. Each is idempotent: an event may arrive twice."""

from __future__ import annotations

import logging

from broker import outbox
from broker.models import OutboxEvent
from sharing import ingest

logger = logging.getLogger(__name__)


@outbox.handler("sharing.upload_received")
def load_upload(event: OutboxEvent) -> None:
    """Check and load an upload; a second run finds it finished and does nothing."""
    ingest.ingest(event.payload["upload"])


@outbox.handler("sharing.data_key_rotated")
def reencrypt_records(event: OutboxEvent) -> None:
    """Move the dataset's records to the new data key, batch by batch."""
    ingest.reencrypt(event.payload["dataset"], int(event.payload["version"]))


# Grants approved or revoked and agreements terminated are told to the organisations concerned
# by signed webhooks (docs/sharing.md, "What comes next"); until then the event is kept, handled,
# in the outbox table, and its audit entry is in the log.
@outbox.handler("sharing.grant_approved")
@outbox.handler("sharing.grant_revoked")
@outbox.handler("sharing.agreement_terminated")
def record_only(event: OutboxEvent) -> None:
    logger.info("sharing event %s %s", event.topic, event.payload)
