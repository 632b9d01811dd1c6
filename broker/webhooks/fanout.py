"""Who is told of which event, and what: the facts of the outbox mapped to webhook deliveries.

Every function writes in the caller's transaction and is idempotent for one
source event (see `services.deliveries_write`), so an outbox handler may run twice.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.db.models import F, Q

from broker.models import OutboxEvent, WebhookDelivery
from broker.webhooks.services import deliveries_write
from consent.models import ConsentRecord, IdentityLink
from sharing import vault
from sharing.models import Agreement, Delivery, Grant

# What a consent change is called as an event type.
CONSENT_EVENTS = {"withdrawn": "consent-withdrawn", "paused": "consent-paused", "expired": "consent-expired"}
# Agreement condition telling data users to delete what they hold about a citizen who withdraws.
DELETION_CONDITION = "deletion_on_withdrawal"


def subject_ref_of(record: ConsentRecord) -> str | None:
    """The holder's reference for the record's citizen: the live link, else the latest (just unlinked)."""
    links = IdentityLink.objects.filter(citizen_id=record.citizen_id, holder_id=record.holder_id)
    link = links.order_by(F("unlinked_at").desc(nulls_first=True), "-linked_at").first()
    return link.subject_ref if link else None


def consent_changed(
    record: ConsentRecord, event_type: str, *, source: int, occurred_at: datetime.datetime
) -> list[WebhookDelivery]:
    """Tell the holder, and every data user with an active grant on its data for that purpose (DGA Art. 21)."""
    subject_ref = subject_ref_of(record)
    if subject_ref is None:
        return []
    written = deliveries_write(
        organisation_id=record.holder_id,
        event_type=event_type,
        payload={"purpose": record.purpose, "subject_ref": subject_ref},
        occurred_at=occurred_at,
        source_event=source,
    )
    grants = (
        Grant.objects.active()
        .filter(dataset__holder_id=record.holder_id, purpose=record.purpose)
        .select_related("agreement")
        .order_by("organisation_id", "created_at")
    )
    by_organisation: dict[int, list[Grant]] = defaultdict(list)
    for grant in grants:
        by_organisation[grant.organisation_id].append(grant)
    for organisation_id, held in by_organisation.items():
        payload = {
            "holder": record.holder.slug,
            "purpose": record.purpose,
            "grants": [str(grant.pk) for grant in held],
            "subject_pseudonym": vault.pseudonym(vault.pseudonym_key(organisation_id), record.holder_id, subject_ref),
            "deletion_required": any(_deletion_required(grant.agreement) for grant in held),
        }
        written += deliveries_write(
            organisation_id=organisation_id,
            event_type=event_type,
            payload=payload,
            occurred_at=occurred_at,
            source_event=source,
        )
    return written


def _deletion_required(agreement: Agreement | None) -> bool:
    return bool(agreement.conditions.get(DELETION_CONDITION, True)) if agreement else True


def consent_event(event: OutboxEvent, change: str) -> list[WebhookDelivery]:
    """The outbox side of a consent change; nothing if the record is gone (an erasure wrote its rows first)."""
    record = ConsentRecord.objects.select_related("holder").filter(pk=event.payload.get("consent")).first()
    if record is None:
        return []
    return consent_changed(record, CONSENT_EVENTS[change], source=event.pk, occurred_at=event.created_at)


def _grant_payload(grant: Grant, **extra: Any) -> dict[str, Any]:
    return {
        "grant": str(grant.pk),
        "organisation": grant.organisation.slug,
        "holder": grant.dataset.holder.slug,
        "dataset": str(grant.dataset_id),
        "purpose": grant.purpose,
        "state": grant.state,
        "starts_at": grant.starts_at.isoformat(),
        "ends_at": grant.ends_at.isoformat(),
        **extra,
    }


def grant_event(event: OutboxEvent, event_type: str) -> list[WebhookDelivery]:
    """A grant approved, revoked or expired: told to its data user and to the holder."""
    grant = (
        Grant.objects.select_related("organisation", "dataset__holder").filter(pk=event.payload.get("grant")).first()
    )
    if grant is None:
        return []
    extra = {"reason": grant.revoke_reason} if event_type == "grant-revoked" else {}
    payload = _grant_payload(grant, **extra)
    written: list[WebhookDelivery] = []
    for organisation_id in dict.fromkeys([grant.organisation_id, grant.dataset.holder_id]):
        written += deliveries_write(
            organisation_id=organisation_id,
            event_type=event_type,
            payload=payload,
            occurred_at=event.created_at,
            source_event=event.pk,
        )
    return written


def agreement_terminated(event: OutboxEvent) -> list[WebhookDelivery]:
    """An agreement terminated: told to the holder and to the data users whose grants it covered then."""
    agreement = Agreement.objects.select_related("holder").filter(pk=event.payload.get("agreement")).first()
    if agreement is None:
        return []
    ended_at = agreement.ended_at or event.created_at
    grants = Grant.objects.filter(agreement__series=agreement.series).filter(
        Q(state=Grant.State.ACTIVE, ends_at__gt=ended_at) | Q(state=Grant.State.REVOKED, revoked_at__gte=ended_at)
    )
    users: dict[int, list[str]] = defaultdict(list)
    for grant_id, organisation_id in grants.values_list("pk", "organisation_id"):
        users[organisation_id].append(str(grant_id))
    base = {
        "agreement": str(agreement.pk),
        "holder": agreement.holder.slug,
        "reason": agreement.end_reason,
        "grants_ended": event.payload.get("grants_ended"),
    }
    written = deliveries_write(
        organisation_id=agreement.holder_id,
        event_type="agreement-terminated",
        payload=base,
        occurred_at=event.created_at,
        source_event=event.pk,
    )
    for organisation_id, grant_ids in users.items():
        written += deliveries_write(
            organisation_id=organisation_id,
            event_type="agreement-terminated",
            payload={**base, "grants": sorted(grant_ids)},
            occurred_at=event.created_at,
            source_event=event.pk,
        )
    return written


def delivery_recorded(event: OutboxEvent) -> list[WebhookDelivery]:
    """A read of the holder's data, hosted or federated: told to the holder."""
    recorded = Delivery.objects.select_related("grant__dataset").filter(pk=event.payload.get("delivery")).first()
    if recorded is None:
        return []
    return deliveries_write(
        organisation_id=recorded.grant.dataset.holder_id,
        event_type="access-delivered",
        payload={
            "grant": str(recorded.grant_id),
            "delivery": str(recorded.pk),
            "records": recorded.records,
            "subjects": recorded.subjects,
        },
        occurred_at=recorded.at,
        source_event=event.pk,
    )
