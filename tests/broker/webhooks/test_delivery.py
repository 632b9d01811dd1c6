"""Sending: a signed SET POSTed to a real receiver on 127.0.0.1, retried with backoff, dead after 26 hours."""

from __future__ import annotations

import datetime
import threading

import jwt
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from broker.models import Organisation, User, WebhookDelivery
from broker.webhooks import delivery, services
from broker.webhooks.delivery import BACKOFF_CAP_SECONDS
from consent import services as consent
from tests.broker.webhooks.conftest import JwksSession, Receiver, World, endpoint_for
from tests.conftest import client_for
from tiers_connector import DuplicateEvent, EventReceiver

State = WebhookDelivery.State


def withdrawn_to(world: World, url: str) -> WebhookDelivery:
    endpoint_for(world.lab, url)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    return WebhookDelivery.objects.get(endpoint__organisation=world.lab)


def test_a_delivery_posts_a_set_that_the_connector_and_pyjwt_both_verify(world: World, receiver: Receiver) -> None:
    sent = withdrawn_to(world, receiver.url)
    assert delivery.deliver(sent.pk).result == "delivered"
    sent.refresh_from_db()
    assert (sent.state, sent.attempts, sent.last_status) == (State.DELIVERED, 1, 200)
    assert sent.delivered_at is not None

    ((headers, body),) = receiver.received
    assert headers["content-type"] == "application/secevent+jwt"
    issuer = settings.TIERS_BASE_URL
    event = EventReceiver(issuer, f"{issuer}/oauth/jwks", receiver.url, session=JwksSession()).receive(  # type: ignore[arg-type]
        body, headers["content-type"]
    )
    assert (event.jti, event.type) == (str(sent.pk), "consent-withdrawn")
    assert event.payload == sent.payload
    assert event.occurred_at == int(sent.occurred_at.timestamp())

    # Independently: PyJWT against the published key alone.
    header = jwt.get_unverified_header(body)
    assert (header["alg"], header["typ"]) == ("ES256", "secevent+jwt")
    published = {key["kid"]: key for key in client_for(world.alice).get("/oauth/jwks").json()["keys"]}
    public = jwt.PyJWK(published[header["kid"]]).key
    claims = jwt.decode(body, public, algorithms=["ES256"], audience=receiver.url, issuer=issuer)
    assert claims["jti"] == str(sent.pk)
    assert set(claims["events"]) == {f"{issuer}/events/consent-withdrawn"}
    assert claims["iat"] <= int(timezone.now().timestamp()) + 1


def test_a_delivered_event_is_not_sent_again(world: World, receiver: Receiver) -> None:
    sent = withdrawn_to(world, receiver.url)
    delivery.deliver(sent.pk)
    assert delivery.deliver(sent.pk).result == "skipped"
    assert len(receiver.received) == 1


def test_a_refusal_schedules_the_next_attempt_with_jitter_within_bounds(world: World, receiver: Receiver) -> None:
    sent = withdrawn_to(world, receiver.url)
    receiver.statuses[:] = [503]
    before = timezone.now()
    outcome = delivery.deliver(sent.pk)
    assert (outcome.result, outcome.status) == ("retry", 503)
    sent.refresh_from_db()
    assert sent.state == State.PENDING
    assert (sent.attempts, sent.last_status, sent.last_error) == (1, 503, "HTTP 503 Service Unavailable")
    assert (
        before
        <= sent.next_attempt_at
        <= timezone.now() + datetime.timedelta(seconds=settings.TIERS_WEBHOOK_BACKOFF_BASE_SECONDS)
    )
    assert sent.leased_until is None
    assert delivery.deliver(sent.pk).result == "skipped"  # not due yet


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 8, 20])
def test_backoff_doubles_from_30_seconds_with_full_jitter_and_a_one_hour_cap(attempts: int) -> None:
    ceiling = min(BACKOFF_CAP_SECONDS, settings.TIERS_WEBHOOK_BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    delays = [delivery.backoff_seconds(attempts) for _ in range(500)]
    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling / 2  # spread over the range, not a fixed delay
    assert len(set(delays)) > 400


def test_a_timeout_or_a_closed_port_is_a_failure_too(world: World) -> None:
    sent = withdrawn_to(world, "http://127.0.0.1:9/nothing-listens")
    assert delivery.deliver(sent.pk).result == "retry"
    sent.refresh_from_db()
    assert "ConnectionError" in sent.last_error


def test_after_26_hours_the_delivery_is_dead(world: World, receiver: Receiver) -> None:
    sent = withdrawn_to(world, receiver.url)
    WebhookDelivery.objects.filter(pk=sent.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=26, seconds=1), attempts=30
    )
    receiver.statuses[:] = [500]
    assert delivery.deliver(sent.pk).result == "dead"
    sent.refresh_from_db()
    assert (sent.state, sent.last_status) == (State.DEAD, 500)
    assert delivery.deliver(sent.pk).result == "skipped"


def test_the_last_attempt_is_at_the_deadline_not_after(world: World, receiver: Receiver) -> None:
    sent = withdrawn_to(world, receiver.url)
    created = timezone.now() - datetime.timedelta(hours=25, minutes=59, seconds=50)
    WebhookDelivery.objects.filter(pk=sent.pk).update(created_at=created, attempts=20)
    receiver.statuses[:] = [500]
    assert delivery.deliver(sent.pk).result == "retry"
    sent.refresh_from_db()
    assert sent.next_attempt_at <= created + datetime.timedelta(hours=26)


def test_a_replayed_dead_delivery_is_delivered_once_with_the_same_jti(
    world: World, receiver: Receiver, lab_admin: User
) -> None:
    sent = withdrawn_to(world, receiver.url)
    WebhookDelivery.objects.filter(pk=sent.pk).update(state=State.DEAD, attempts=40, last_status=500)
    replayed = services.delivery_replay(by=lab_admin, delivery=sent)
    assert replayed.state == State.PENDING
    assert delivery.deliver(sent.pk).result == "delivered"
    assert delivery.deliver(sent.pk).result == "skipped"
    assert len(receiver.received) == 1
    claims = jwt.decode(receiver.received[0][1], options={"verify_signature": False})
    assert claims["jti"] == str(sent.pk)


def test_a_disabled_endpoint_ends_its_pending_deliveries(world: World, receiver: Receiver, lab_admin: User) -> None:
    sent = withdrawn_to(world, receiver.url)
    services.endpoint_disable(by=lab_admin, endpoint=sent.endpoint)
    assert delivery.deliver(sent.pk).result == "dead"
    assert receiver.received == []


def test_the_retry_job_queues_only_due_pending_deliveries(world: World, receiver: Receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = withdrawn_to(world, receiver.url)
    queued: list[str] = []
    monkeypatch.setattr(delivery, "_publish", lambda ids: queued.extend(ids) or len(ids))
    assert delivery.requeue_due() == 1
    assert queued == [str(sent.pk)]
    WebhookDelivery.objects.filter(pk=sent.pk).update(leased_until=timezone.now() + datetime.timedelta(seconds=60))
    assert delivery.requeue_due() == 0  # a worker holds it
    WebhookDelivery.objects.filter(pk=sent.pk).update(leased_until=timezone.now() - datetime.timedelta(seconds=1))
    assert delivery.requeue_due() == 1  # its worker died: the lease ran out


def test_a_set_for_a_rights_event_is_signed_like_any_other(world: World, receiver: Receiver) -> None:
    endpoint_for(world.holder, receiver.url)
    filed = consent.rights_request_file(citizen=world.alice, kind="objection", details="No profiling.")
    (recipient,) = filed.recipients.filter(organisation=world.holder)
    assert recipient.delivery is not None
    delivery.deliver(recipient.delivery.pk)
    recipient.refresh_from_db()
    assert recipient.state == "forwarded"
    issuer = settings.TIERS_BASE_URL
    check = EventReceiver(issuer, f"{issuer}/oauth/jwks", receiver.url, session=JwksSession())  # type: ignore[arg-type]
    event = check.receive(receiver.received[0][1], "application/secevent+jwt")
    assert event.type == "rights-objection"
    assert event.payload["subject_ref"] == "CUST-0001"
    with pytest.raises(DuplicateEvent):
        check.receive(receiver.received[0][1], "application/secevent+jwt")


@pytest.mark.django_db(transaction=True)
def test_a_delivery_claimed_by_one_worker_is_skipped_by_another(
    alice: User, holder: Organisation, receiver: Receiver
) -> None:
    endpoint = endpoint_for(holder, receiver.url)
    with transaction.atomic():
        row = services.deliveries_write(
            organisation_id=holder.pk,
            event_type="consent-withdrawn",
            payload={"purpose": "dpv:PublicBenefit", "subject_ref": "X"},
            occurred_at=timezone.now(),
            source_event=None,
        )[0]
    assert row.endpoint_id == endpoint.pk
    locked, release = threading.Event(), threading.Event()

    def first_worker() -> None:
        try:
            with transaction.atomic():
                WebhookDelivery.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert locked.wait(10)
        assert delivery.deliver(row.pk).result == "skipped"  # SKIP LOCKED: no wait, no second POST
    finally:
        release.set()
        thread.join()
    assert receiver.received == []
    assert delivery.deliver(row.pk).result == "delivered"
