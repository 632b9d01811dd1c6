"""Grants past their end become `expired`: a scheduled job, safe to run twice at once."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from broker import audit, outbox
from broker.oauth import tokens
from sharing.models import Grant


def grants_expire_due(now: datetime.datetime | None = None, batch: int = 500) -> int:
    """Mark every active grant whose period has ended as expired; returns how many this run expired.

    A grant past its end is refused at once by every read (`Grant.is_active` checks the time);
    this job makes the state say so, writes the audit entry and tells the data user through the
    outbox. Rows another run holds are skipped, so two runs at once never expire a grant twice.
    """
    moment = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                Grant.objects.select_for_update(skip_locked=True)
                .filter(state=Grant.State.ACTIVE, ends_at__lte=moment)
                .order_by("ends_at", "pk")[:batch]
            )
            for grant in due:
                grant.state = Grant.State.EXPIRED
                grant.save(update_fields=["state"])
                audit.record(
                    verb="grant.expired",
                    actor="system",
                    subject=grant,
                    details={"organisation_id": grant.organisation_id, "ends_at": grant.ends_at.isoformat()},
                )
                outbox.emit("sharing.grant_expired", {"grant": str(grant.pk)})
            if due:
                tokens.invalidate_liveness()
        expired += len(due)
        if len(due) < batch:
            return expired
