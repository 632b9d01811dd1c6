"""Consent expiry: each due consent expires once, as an event with its receipt, audit entry and outbox event."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from broker.models import AuditBody, Organisation, OutboxEvent, User
from consent import services
from consent.expiry import consents_expire_due
from consent.models import ConsentEvent, ConsentModule, ConsentRecord
from tests.concurrency import both_at_once
from tests.consent.conftest import link
from tests.factories import CitizenFactory

RESEARCH, POLICY = "dpv:ScientificResearch", "dpv:PublicPolicy"
PAST = datetime.timedelta(minutes=1)


def due(record: ConsentRecord) -> None:
    ConsentRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() - PAST)


@pytest.mark.django_db
def test_due_consents_expire_with_their_event_receipt_audit_entry_and_outbox_event(
    alice: User, bob: User, holder: Organisation, module: ConsentModule
) -> None:
    link(alice, holder, "CUST-0001")
    link(bob, holder, "CUST-0002")
    research, policy = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH, POLICY])
    (bobs,) = services.consent_give(citizen=bob, module=module, purposes=[RESEARCH])
    due(research)
    due(policy)

    assert consents_expire_due() == 2

    for record in (research, policy):
        record.refresh_from_db()
        assert record.state == ConsentRecord.State.EXPIRED
        event = record.events.last()
        assert event is not None
        assert (event.event, event.state) == ("expired", "expired")
        assert event.receipt.count(".") == 2  # a compact JWS
        body = AuditBody.objects.get(pk=event.audit_entry_id)
        assert (body.verb, body.subject, body.citizen_id) == ("consent.expired", f"consentrecord:{record.pk}", alice.pk)
        assert OutboxEvent.objects.filter(topic="consent.expired", payload={"consent": str(record.pk)}).count() == 1
    bobs.refresh_from_db()
    assert bobs.state == ConsentRecord.State.GIVEN


@pytest.mark.django_db
def test_running_twice_expires_once(alice: User, holder: Organisation, module: ConsentModule) -> None:
    link(alice, holder, "CUST-0001")
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    due(record)

    assert consents_expire_due() == 1
    assert consents_expire_due() == 0
    assert ConsentEvent.objects.filter(record=record, event="expired").count() == 1
    assert OutboxEvent.objects.filter(topic="consent.expired").count() == 1


@pytest.mark.django_db
def test_paused_consents_expire_and_withdrawn_ones_stay_withdrawn(
    alice: User, holder: Organisation, module: ConsentModule
) -> None:
    link(alice, holder, "CUST-0001")
    research, policy = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH, POLICY])
    # Set directly: what is under test is which states the job expires, not pausing or withdrawing.
    ConsentRecord.objects.filter(pk=research.pk).update(state=ConsentRecord.State.PAUSED)
    ConsentRecord.objects.filter(pk=policy.pk).update(state=ConsentRecord.State.WITHDRAWN)

    later = timezone.now() + datetime.timedelta(days=366)
    assert consents_expire_due(now=later) == 1

    assert ConsentRecord.objects.get(pk=research.pk).state == ConsentRecord.State.EXPIRED
    assert ConsentRecord.objects.get(pk=policy.pk).state == ConsentRecord.State.WITHDRAWN


@pytest.mark.django_db
def test_nothing_expires_before_its_term(alice: User, holder: Organisation, module: ConsentModule) -> None:
    link(alice, holder, "CUST-0001")
    services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    assert consents_expire_due(now=timezone.now() + datetime.timedelta(days=364)) == 0
    assert not AuditBody.objects.filter(verb="consent.expired").exists()


@pytest.mark.django_db
def test_an_expired_consent_can_be_given_again(alice: User, holder: Organisation, module: ConsentModule) -> None:
    link(alice, holder, "CUST-0001")
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    due(record)
    consents_expire_due()
    (again,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    assert again.pk == record.pk
    assert again.state == ConsentRecord.State.GIVEN
    assert [event.event for event in again.events.all()] == ["given", "expired", "given"]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_expire_each_consent_once(holder: Organisation, module: ConsentModule) -> None:
    for number in range(5):
        citizen = CitizenFactory(username=f"citizen{number}")
        link(citizen, holder, f"CUST-{number:04}")
        services.consent_give(citizen=citizen, module=module, purposes=[RESEARCH, POLICY])
    later = timezone.now() + datetime.timedelta(days=366)

    counts = both_at_once(lambda: consents_expire_due(now=later, batch=2))

    assert sum(counts) == 10
    assert ConsentRecord.objects.filter(state=ConsentRecord.State.EXPIRED).count() == 10
    assert ConsentEvent.objects.filter(event="expired").count() == 10
    assert AuditBody.objects.filter(verb="consent.expired").count() == 10
    events = OutboxEvent.objects.filter(topic="consent.expired")
    assert sorted(json.dumps(event.payload) for event in events) == sorted(
        {json.dumps(event.payload) for event in events}
    )
    assert events.count() == 10
