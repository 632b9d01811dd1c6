"""Incidents (DGA Art. 12(k), 21(5)): an operator records one, tells whom it concerned, and closes it.

A notice goes to every holder whose dataset a grant of the incident covers and,
when personal data was concerned, to every citizen those grants' deliveries
included. Citizens are never named in the log: its entries carry counts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from broker import audit, outbox
from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import Incident, IncidentNotice, Organisation, User
from sharing.models import DeliverySubject, Grant

NOTICE_BATCH = 1000


def _require_operator(actor: User) -> None:
    if not (isinstance(actor, User) and actor.is_operator):
        raise Forbidden("Only an operator of Tiers may do this.")


def incident_record(
    *,
    actor: User,
    summary: str,
    description: str,
    occurred_at: datetime.datetime,
    detected_at: datetime.datetime,
    personal_data: bool,
    organisation: Organisation | None = None,
    grants: Iterable[Grant] = (),
) -> Incident:
    """Record an incident, the organisation at fault if known, and the grants whose data it concerned."""
    _require_operator(actor)
    summary, description = summary.strip(), description.strip()
    problems = []
    if not summary or len(summary) > 300:
        problems.append({"field": "summary", "detail": "Say in a line (300 characters at most) what happened."})
    if not description:
        problems.append({"field": "description", "detail": "Describe what happened and what was done."})
    if detected_at < occurred_at:
        problems.append({"field": "detected_at", "detail": "An incident is detected after it occurs."})
    if detected_at > timezone.now() + datetime.timedelta(minutes=5):
        problems.append({"field": "detected_at", "detail": "The detection cannot be in the future."})
    if problems:
        raise InvalidInput(" ".join(p["detail"] for p in problems), errors=problems)
    grant_list = list(grants)
    with transaction.atomic():
        incident = Incident.objects.create(
            summary=summary,
            description=description,
            occurred_at=occurred_at,
            detected_at=detected_at,
            organisation=organisation,
            personal_data=personal_data,
            recorded_by=actor,
        )
        incident.grants.set(grant_list)
        audit.record(
            verb="incident.recorded",
            actor=actor,
            subject=incident,
            details={
                "summary": summary,
                "organisation": organisation.slug if organisation else None,
                "grants": sorted(str(grant.pk) for grant in grant_list),
                "personal_data": personal_data,
            },
        )
    return incident


def incident_recipients(incident: Incident) -> tuple[list[int], list[int]]:
    """Whom the incident concerns: the holders of its grants' datasets, and (personal data) the citizens included."""
    grants = incident.grants.all()
    # The organisation at fault is not told of its own incident as if it were a victim.
    at_fault = incident.organisation_id
    holders = sorted(set(grants.values_list("dataset__holder_id", flat=True)) - {at_fault})
    citizens: list[int] = []
    if incident.personal_data:
        included = DeliverySubject.objects.filter(delivery__grant__in=grants, citizen__isnull=False)
        citizens = sorted(set(included.values_list("citizen_id", flat=True)))
    return holders, citizens


def incident_notify(*, actor: User, incident: Incident) -> Incident:
    """Write a notice for everyone the incident concerns, and one e-mail event each; notifying twice does nothing."""
    _require_operator(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.state == Incident.State.NOTIFIED:
            return incident
        if incident.state != Incident.State.OPEN:
            raise Conflict(f"This incident is {incident.state}; only a recorded one is notified.")
        holders, citizens = incident_recipients(incident)
        notices = [IncidentNotice(incident=incident, organisation_id=holder) for holder in holders]
        notices += [IncidentNotice(incident=incident, citizen_id=citizen) for citizen in citizens]
        for notice in IncidentNotice.objects.bulk_create(notices, batch_size=NOTICE_BATCH):
            outbox.emit("incident.notice", {"notice_id": notice.pk})
        incident.state = Incident.State.NOTIFIED
        incident.notified_at = timezone.now()
        incident.save(update_fields=["state", "notified_at"])
        audit.record(
            verb="incident.notified",
            actor=actor,
            subject=incident,
            details={"holders": len(holders), "citizens": len(citizens)},
        )
    return incident


def incident_close(*, actor: User, incident: Incident) -> Incident:
    """Close an incident once it is dealt with; closing twice does nothing."""
    _require_operator(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.state == Incident.State.CLOSED:
            return incident
        incident.state = Incident.State.CLOSED
        incident.closed_at = timezone.now()
        incident.save(update_fields=["state", "closed_at"])
        audit.record(
            verb="incident.closed",
            actor=actor,
            subject=incident,
            details={"notified": incident.notified_at is not None},
        )
    return incident
