"""Who is told of what: consent changes, grants, agreements and deliveries mapped to exactly the right endpoints."""

from __future__ import annotations

from django.db import transaction

from broker import outbox
from broker.models import Organisation, OutboxEvent, User, WebhookDelivery
from broker.webhooks import fanout
from consent import services as consent
from consent.models import ConsentModule
from sharing import delivery as sharing_delivery
from sharing import services as sharing
from sharing import vault
from sharing.models import Dataset
from tests.broker.webhooks.conftest import PUBLIC_BENEFIT, World, endpoint_for, grant_for
from tests.sharing.conftest import agreement_in_force


def told(organisation: Organisation, event_type: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint__organisation=organisation, event_type=event_type))


def test_a_withdrawal_tells_the_holder_and_the_data_users_with_a_grant_for_that_purpose(
    world: World, city: Organisation, other_holder: Organisation
) -> None:
    for organisation in (world.holder, world.lab, city, other_holder):
        endpoint_for(organisation)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)

    (to_holder,) = told(world.holder, "consent-withdrawn")
    assert to_holder.payload == {"purpose": world.consent.purpose, "subject_ref": "CUST-0001"}
    (to_lab,) = told(world.lab, "consent-withdrawn")
    secret = vault.pseudonym_key(world.lab)
    assert to_lab.payload == {
        "holder": world.holder.slug,
        "purpose": world.consent.purpose,
        "grants": [str(world.grant.pk)],
        "subject_pseudonym": vault.pseudonym(secret, world.holder.pk, "CUST-0001"),
        "deletion_required": True,
    }
    assert told(city, "consent-withdrawn") == []  # no grant on this holder's data
    assert told(other_holder, "consent-withdrawn") == []
    assert to_holder.state == WebhookDelivery.State.PENDING


def test_a_data_user_whose_grant_is_for_another_purpose_is_not_told(
    world: World, city: Organisation, city_admin: User, module: ConsentModule, trips: Dataset
) -> None:
    endpoint_for(city)
    grant_for(city_admin, city, trips, purpose=PUBLIC_BENEFIT)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    assert told(city, "consent-withdrawn") == []


def test_a_revoked_grant_is_no_reason_to_be_told(world: World, holder_admin: User) -> None:
    endpoint_for(world.lab)
    sharing.grant_revoke(by=holder_admin, grant=world.grant, reason="The study ended early.")
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    assert told(world.lab, "consent-withdrawn") == []


def test_deletion_required_follows_the_agreement_condition(
    alice: User, holder_admin: User, operator: User, lab: Organisation, lab_admin: User, trips: Dataset,
    module: ConsentModule, holder: Organisation,
) -> None:  # fmt: skip
    agreement = agreement_in_force(holder_admin, operator, [trips])
    grant = grant_for(lab_admin, lab, trips)
    # The condition is not in sharing's vocabulary yet: set on the agreement as its terms would say.
    terms = {**agreement.terms, "conditions": {**agreement.conditions, "deletion_on_withdrawal": False}}
    type(agreement).objects.filter(pk=agreement.pk).update(terms=terms)
    endpoint_for(lab)
    from tests.sharing.conftest import consent_to, link

    link(alice, holder, "CUST-0009")
    (record,) = consent_to(alice, module, grant.purpose)
    consent.consent_pause(citizen=alice, record=record)
    (paused,) = told(lab, "consent-paused")
    assert paused.payload["deletion_required"] is False


def test_the_rows_are_written_in_the_withdrawal_transaction(world: World) -> None:
    endpoint_for(world.lab)
    try:
        with transaction.atomic():
            consent.consent_withdraw(citizen=world.alice, record=world.consent)
            (written,) = told(world.lab, "consent-withdrawn")
            event = OutboxEvent.objects.get(topic="consent.withdrawn")
            assert written.source_event == event.pk
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert told(world.lab, "consent-withdrawn") == []
    assert not OutboxEvent.objects.filter(topic="consent.withdrawn").exists()


def test_handling_the_outbox_event_twice_writes_no_duplicate(world: World) -> None:
    endpoint_for(world.lab)
    endpoint_for(world.holder)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    event = OutboxEvent.objects.get(topic="consent.withdrawn")
    before = WebhookDelivery.objects.count()
    for _ in range(2):
        outbox._handlers["consent.withdrawn"](event)
    assert WebhookDelivery.objects.count() == before == 2


def test_an_expiry_is_fanned_out_by_its_handler_once(world: World) -> None:
    endpoint_for(world.lab)
    with transaction.atomic():
        event = OutboxEvent.objects.create(topic="consent.expired", payload={"consent": str(world.consent.pk)})
    for _ in range(2):
        outbox._handlers["consent.expired"](event)
    (expired,) = told(world.lab, "consent-expired")
    assert expired.source_event == event.pk


def test_unlinking_withdraws_and_tells_with_the_reference_that_was_linked(world: World) -> None:
    endpoint_for(world.holder)
    link = world.alice.identity_links.get()
    consent.link_remove(citizen=world.alice, link=link)
    (to_holder,) = told(world.holder, "consent-withdrawn")
    assert to_holder.payload["subject_ref"] == "CUST-0001"


def test_an_organisation_without_an_endpoint_gets_nothing_and_a_disabled_endpoint_neither(world: World) -> None:
    endpoint = endpoint_for(world.lab)
    endpoint.enabled = False
    endpoint.save()
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    assert not WebhookDelivery.objects.exists()


def test_grant_approval_and_revocation_are_told_to_the_data_user_and_the_holder(
    world: World, holder_admin: User, other_holder: Organisation, city: Organisation
) -> None:
    for organisation in (world.holder, world.lab, other_holder, city):
        endpoint_for(organisation)
    approved = OutboxEvent.objects.get(topic="sharing.grant_approved")
    outbox._handlers[approved.topic](approved)
    outbox._handlers[approved.topic](approved)
    assert len(told(world.lab, "grant-approved")) == len(told(world.holder, "grant-approved")) == 1
    sharing.grant_revoke(by=holder_admin, grant=world.grant, reason="The study ended early.")
    revoked = OutboxEvent.objects.get(topic="sharing.grant_revoked")
    outbox._handlers[revoked.topic](revoked)
    (to_lab,) = told(world.lab, "grant-revoked")
    assert to_lab.payload["grant"] == str(world.grant.pk)
    assert to_lab.payload["reason"] == "The study ended early."
    assert told(other_holder, "grant-revoked") == told(city, "grant-revoked") == []


def test_an_agreement_terminated_is_told_to_the_holder_and_its_grant_holders(
    world: World, holder_admin: User, city: Organisation
) -> None:
    for organisation in (world.holder, world.lab, city):
        endpoint_for(organisation)
    sharing.agreement_terminate(by=holder_admin, agreement=world.grant.agreement, reason="The programme ends.")
    event = OutboxEvent.objects.get(topic="sharing.agreement_terminated")
    outbox._handlers[event.topic](event)
    (to_lab,) = told(world.lab, "agreement-terminated")
    assert to_lab.payload["grants"] == [str(world.grant.pk)]
    assert len(told(world.holder, "agreement-terminated")) == 1
    assert told(city, "agreement-terminated") == []


def test_a_hosted_read_is_told_to_the_holder(world: World) -> None:
    endpoint_for(world.holder)
    endpoint_for(world.lab)
    read = sharing_delivery.open_read(world.grant)
    event = OutboxEvent.objects.get(topic="sharing.delivery_recorded")
    fanout.delivery_recorded(event)
    (to_holder,) = told(world.holder, "access-delivered")
    assert to_holder.payload == {
        "grant": str(world.grant.pk),
        "delivery": str(read.delivery.pk),
        "records": read.delivery.records,
        "subjects": read.delivery.subjects,
    }
    assert told(world.lab, "access-delivered") == []
