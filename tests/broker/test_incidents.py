"""Incidents: recorded by an operator, notified to the holders and citizens concerned, once, then closed."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from broker import incidents, outbox
from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import AuditBody, Incident, IncidentNotice, Organisation, OutboxEvent, User
from sharing import delivery
from sharing.models import Grant
from tests.broker.test_workspace import publish_module, register_trips
from tests.factories import OrganisationFactory
from tests.sharing.conftest import (
    PUBLIC_BENEFIT,
    RESEARCH,
    agreement_in_force,
    consent_to,
    grant_for,
    link,
    trips_csv,
    upload,
)

pytestmark = pytest.mark.django_db

ROWS = [
    ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
    ("T-BOB", "2026-03-01", "Port", "Mairie", 2.0),
    ("T-NOBODY", "2026-03-01", "Nord", "Sud", 7.25),
]


def events(verb: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb=verb).order_by("entry_id")]


def deliver_all() -> None:
    for event in OutboxEvent.objects.filter(topic="incident.notice"):
        outbox.dispatch(event.pk)


def read(grant: Grant) -> int:
    """Read a grant as its data user would, which records whom the read included."""
    return sum(1 for _ in delivery.stream_jsonl(delivery.open_read(grant)))


@pytest.fixture
def grants(  # type: ignore[no-untyped-def]
    holder: Organisation, holder_admin: User, user_admin: User, data_user: Organisation, operator: User, alice, bob
) -> dict[str, Grant]:
    """Two grants of the city on trips, each read: research included alice, public benefit included bob."""
    module, trips = publish_module(holder, holder_admin), register_trips(holder, holder_admin)
    agreement_in_force(holder_admin, operator, [trips])
    upload(holder_admin, trips, trips_csv(ROWS))
    link(alice, holder, "T-ALICE")
    link(bob, holder, "T-BOB")
    consent_to(alice, module, RESEARCH)
    consent_to(bob, module, PUBLIC_BENEFIT)
    research = grant_for(user_admin, data_user, trips, purpose=RESEARCH)
    public_benefit = grant_for(user_admin, data_user, trips, purpose=PUBLIC_BENEFIT)
    assert read(research) == 1
    assert read(public_benefit) == 1
    return {"research": research, "public_benefit": public_benefit}


def record(operator: User, grants: list[Grant], *, personal_data: bool = True, **changes: Any) -> Incident:
    now = timezone.now()
    values: dict[str, Any] = {
        "summary": "Records read after the grant's retention",
        "description": "The city kept and re-read trips beyond the retention its grant allowed.",
        "occurred_at": now - datetime.timedelta(days=2),
        "detected_at": now - datetime.timedelta(days=1),
        "personal_data": personal_data,
        "grants": grants,
        **changes,
    }
    return incidents.incident_record(actor=operator, **values)


def test_notification_reaches_the_holder_and_the_citizens_the_grant_delivered_only(  # type: ignore[no-untyped-def]
    grants, operator: User, holder: Organisation, data_user: Organisation, alice: User, bob: User
) -> None:
    OrganisationFactory(slug="unconcerned", kind=Organisation.Kind.HOLDER)
    incident = record(operator, [grants["research"]], organisation=data_user)
    incidents.incident_notify(actor=operator, incident=incident)

    notices = IncidentNotice.objects.filter(incident=incident)
    assert {n.organisation_id for n in notices if n.organisation_id} == {holder.pk}
    assert {n.citizen_id for n in notices if n.citizen_id} == {alice.pk}  # bob was in another grant's read
    incident.refresh_from_db()
    assert incident.state == Incident.State.NOTIFIED
    assert incident.notified_at is not None

    deliver_all()
    assert sorted(message.to[0] for message in mail.outbox) == sorted([holder.contact_email, alice.email])
    assert bob.email not in [message.to[0] for message in mail.outbox]
    assert all(incident.summary in message.body for message in mail.outbox)
    assert not notices.filter(sent_at__isnull=True).exists()


def test_the_log_counts_citizens_and_never_names_them(grants, operator: User, alice: User) -> None:  # type: ignore[no-untyped-def]
    incident = record(operator, [grants["research"], grants["public_benefit"]])
    incidents.incident_notify(actor=operator, incident=incident)
    [notified] = events("incident.notified")
    assert notified["details"] == {"holders": 1, "citizens": 2}
    assert notified["actor"] == f"operator:{operator.pk}"
    assert events("incident.recorded")[0]["details"]["grants"] == sorted(str(g.pk) for g in grants.values())
    for verb in ("incident.recorded", "incident.notified"):
        text = json.dumps(events(verb))
        assert f"user:{alice.pk}" not in text
        assert alice.email not in text
    assert not AuditBody.objects.filter(verb__startswith="incident.", citizen_id__isnull=False).exists()


def test_without_personal_data_only_holders_are_told(grants, operator: User, holder: Organisation) -> None:  # type: ignore[no-untyped-def]
    incident = record(operator, [grants["research"]], personal_data=False)
    incidents.incident_notify(actor=operator, incident=incident)
    notices = IncidentNotice.objects.filter(incident=incident)
    assert [n.organisation_id for n in notices] == [holder.pk]
    assert not notices.filter(citizen__isnull=False).exists()


def test_notifying_and_sending_twice_tells_each_once(grants, operator: User) -> None:  # type: ignore[no-untyped-def]
    incident = record(operator, [grants["research"]])
    incidents.incident_notify(actor=operator, incident=incident)
    incidents.incident_notify(actor=operator, incident=incident)
    assert IncidentNotice.objects.filter(incident=incident).count() == 2
    assert OutboxEvent.objects.filter(topic="incident.notice").count() == 2
    assert len(events("incident.notified")) == 1
    deliver_all()
    from broker.handlers import send_incident_notice

    for event in OutboxEvent.objects.filter(topic="incident.notice"):  # a redelivered event
        send_incident_notice(event)
    assert len(mail.outbox) == 2


def test_a_notice_without_an_address_stays_unsent(grants, operator: User, holder: Organisation) -> None:  # type: ignore[no-untyped-def]
    Organisation.objects.filter(pk=holder.pk).update(contact_email="")
    incident = record(operator, [grants["research"]], personal_data=False)
    incidents.incident_notify(actor=operator, incident=incident)
    deliver_all()
    assert not mail.outbox
    assert IncidentNotice.objects.get(incident=incident).sent_at is None


def test_closing_ends_it_and_a_closed_incident_is_not_notified(grants, operator: User) -> None:  # type: ignore[no-untyped-def]
    incident = record(operator, [grants["research"]])
    incidents.incident_close(actor=operator, incident=incident)
    incidents.incident_close(actor=operator, incident=incident)
    incident.refresh_from_db()
    assert incident.state == Incident.State.CLOSED
    assert incident.closed_at is not None
    assert len(events("incident.closed")) == 1
    with pytest.raises(Conflict):
        incidents.incident_notify(actor=operator, incident=incident)
    assert not IncidentNotice.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "holder_admin", "stranger"])
def test_only_operators_record_notify_and_close(request, grants, operator: User, persona: str) -> None:  # type: ignore[no-untyped-def]
    someone = request.getfixturevalue(persona)
    with pytest.raises(Forbidden):
        record(someone, [grants["research"]])
    incident = record(operator, [grants["research"]])
    with pytest.raises(Forbidden):
        incidents.incident_notify(actor=someone, incident=incident)
    with pytest.raises(Forbidden):
        incidents.incident_close(actor=someone, incident=incident)
    assert Incident.objects.get(pk=incident.pk).state == Incident.State.OPEN


def test_an_incident_is_detected_after_it_occurs(operator: User) -> None:
    now = timezone.now()
    with pytest.raises(InvalidInput) as refused:
        record(operator, [], occurred_at=now, detected_at=now - datetime.timedelta(hours=1))
    assert refused.value.extensions["errors"][0]["field"] == "detected_at"
    assert not Incident.objects.exists()


def test_the_organisation_at_fault_gets_no_notice(  # type: ignore[no-untyped-def]
    grants, operator: User, data_user: Organisation
) -> None:
    incident = record(operator, [grants["research"]], organisation=data_user)
    incidents.incident_notify(actor=operator, incident=incident)
    assert not IncidentNotice.objects.filter(organisation=data_user).exists()


def test_a_holder_at_fault_is_not_notified_as_a_victim_of_its_own_incident(  # type: ignore[no-untyped-def]
    grants, operator: User, holder: Organisation
) -> None:
    incident = record(operator, [grants["research"]], organisation=holder)
    incidents.incident_notify(actor=operator, incident=incident)
    assert not IncidentNotice.objects.filter(organisation=holder).exists()
