"""Retention limits enforced by scheduled jobs: withdrawn datasets' vault data, old delivery logs.

Both are safe to run twice at once: each locks what it deletes with SKIP LOCKED, so two runs
share the work, and what one deleted the other does not find. See docs/jobs.md.
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from broker import audit
from sharing.models import DataKey, Dataset, DeliverySubject, Grant, Record, UploadError

SHREDDED = b""  # a data key whose wrapped key is gone: what it encrypted can never be opened again
BATCH = 5000


def vault_purge_due(now: datetime.datetime | None = None) -> int:
    """Delete the records of withdrawn datasets none of whose grants is active, and shred their keys.

    Returns how many datasets this run purged. A grant that runs to term after the withdrawal keeps
    the data readable until it ends (and the grants job marks it expired).
    """
    moment = now or timezone.now()
    holds_data = Exists(Record.objects.filter(dataset=OuterRef("pk"))) | Exists(
        DataKey.objects.filter(dataset=OuterRef("pk")).exclude(wrapped_key=SHREDDED)
    )
    granted = Exists(Grant.objects.filter(dataset=OuterRef("pk"), state=Grant.State.ACTIVE))
    due = (
        Dataset.objects.filter(state=Dataset.State.WITHDRAWN, withdrawn_at__lte=moment)
        .filter(holds_data)
        .exclude(granted)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(_purge(dataset_id, moment) for dataset_id in list(due))


def _purge(dataset_id: uuid.UUID, moment: datetime.datetime) -> int:
    """Purge one dataset in one transaction with its audit entry; 0 if another run has it or it is done."""
    with transaction.atomic():
        # Only the dataset's row: Dataset's default ordering joins its holder, whose row the
        # holder's other datasets share.
        dataset = (
            Dataset.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=dataset_id, state=Dataset.State.WITHDRAWN)
            .order_by()
            .first()
        )
        if dataset is None or Grant.objects.filter(dataset=dataset, state=Grant.State.ACTIVE).exists():
            return 0
        records, _ = Record.objects.filter(dataset=dataset).delete()
        # Refusal reasons may quote the values of a refused row.
        UploadError.objects.filter(upload__dataset=dataset).delete()
        shredded = (
            DataKey.objects.filter(dataset=dataset)
            .exclude(wrapped_key=SHREDDED)
            .update(wrapped_key=SHREDDED, retired_at=Coalesce("retired_at", moment))
        )
        if not records and not shredded:
            return 0
        audit.record(
            verb="dataset.purged",
            actor="system",
            subject=dataset,
            details={"records": records, "keys_shredded": shredded},
        )
        return 1


def delivery_logs_purge_due(now: datetime.datetime | None = None, batch: int = BATCH) -> int:
    """Delete who-was-included rows of deliveries older than the retention; returns how many rows.

    The deliveries themselves and their audit entries stay: counts and pseudonym digests remain
    provable, but the uses no longer show in the citizens' history (see docs/jobs.md).
    """
    moment = now or timezone.now()
    days = settings.TIERS_DELIVERY_LOG_RETENTION_DAYS
    cutoff = moment - datetime.timedelta(days=days)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                DeliverySubject.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(delivery__at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            rows, _ = DeliverySubject.objects.filter(pk__in=ids).delete()
            if rows:
                audit.record(
                    verb="delivery_log.purged",
                    actor="system",
                    subject="delivery_log",
                    details={"rows": rows, "before": cutoff.isoformat(), "retention_days": days},
                )
        deleted += rows
        if len(ids) < batch:
            return deleted
