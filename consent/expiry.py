"""Consents past their term become `expired`: a scheduled job, safe to run twice at once."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from broker import outbox
from consent import services
from consent.models import ConsentRecord

# Paused consents expire too: a pause does not stretch the term the citizen agreed to.
STANDING = (*ConsentRecord.ACTIVE_STATES, ConsentRecord.State.PAUSED)


def consents_expire_due(now: datetime.datetime | None = None, batch: int = 500) -> int:
    """Mark every standing consent whose term has passed as expired; returns how many this run expired.

    Each batch is one transaction: the records' events, receipts and audit entries, and one
    `consent.expired` outbox event per record. Rows another run holds are skipped, not waited for,
    so two runs at once share the work and never expire a record twice.
    """
    moment = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                ConsentRecord.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("citizen", "module", "holder")
                .filter(state__in=STANDING, expires_at__lte=moment)
                .order_by("expires_at", "pk")[:batch]
            )
            for record in due:
                # _change names its citizen as the actor: see docs/jobs.md.
                services._change(record, record.citizen, event="expired", state=ConsentRecord.State.EXPIRED)
                outbox.emit("consent.expired", {"consent": str(record.pk)})
        expired += len(due)
        if len(due) < batch:
            return expired
