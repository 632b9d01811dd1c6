"""The transactional outbox: written with the change, handled at least once, never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from broker import outbox, services
from broker.models import Organisation, OutboxEvent
from tests.factories import OrganisationFactory

calls: list[int] = []


@outbox.handler("test.flaky")
def flaky(event: OutboxEvent) -> None:
    calls.append(event.pk)
    if event.payload.get("fail"):
        raise ConnectionError("receiver down")


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox.emit("test.flaky", {})


@pytest.mark.django_db
def test_emit_for_a_topic_without_handler_is_refused() -> None:
    with transaction.atomic(), pytest.raises(ValueError, match="no handler"):
        outbox.emit("test.nobody-listens", {})


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_event() -> None:
    def change_that_fails() -> None:
        with transaction.atomic():
            outbox.emit("test.flaky", {})
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        change_that_fails()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_dispatch_handles_an_event_once_and_marks_it(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        event = outbox.emit("test.flaky", {})
    assert outbox.dispatch(event.pk) is True
    assert outbox.dispatch(event.pk) is False
    event.refresh_from_db()
    assert calls == [event.pk]
    assert event.handled_at is not None
    assert event.attempts == 1


@pytest.mark.django_db
def test_failed_handling_stays_pending_with_its_error_and_a_backoff() -> None:
    with transaction.atomic():
        event = outbox.emit("test.flaky", {"fail": True})
    with pytest.raises(ConnectionError):
        outbox.dispatch(event.pk)
    event.refresh_from_db()
    assert event.handled_at is None
    assert event.last_error == "ConnectionError: receiver down"
    assert event.leased_until is not None
    assert event.leased_until > timezone.now()
    assert outbox.dispatch(event.pk) is False  # not again before the backoff


@pytest.mark.django_db
def test_an_event_leased_by_a_live_worker_is_not_handled_twice() -> None:
    with transaction.atomic():
        event = outbox.emit("test.flaky", {})
    OutboxEvent.objects.filter(pk=event.pk).update(leased_until=timezone.now() + timedelta(minutes=5))
    assert outbox.dispatch(event.pk) is False
    assert calls == []


@pytest.mark.django_db
def test_sweeper_resends_what_a_lost_message_or_dead_worker_left(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    relayed: list[int] = []
    monkeypatch.setattr(outbox, "relay", relayed.append)
    long_ago = timezone.now() - timedelta(hours=1)
    with transaction.atomic():
        lost = outbox.emit("test.flaky", {})
        fresh = outbox.emit("test.flaky", {})
        dead_worker = outbox.emit("test.flaky", {})
        live_worker = outbox.emit("test.flaky", {})
        done = outbox.emit("test.flaky", {})
    OutboxEvent.objects.filter(pk__in=[lost.pk, dead_worker.pk, live_worker.pk, done.pk]).update(created_at=long_ago)
    OutboxEvent.objects.filter(pk=dead_worker.pk).update(leased_until=long_ago)
    OutboxEvent.objects.filter(pk=live_worker.pk).update(leased_until=timezone.now() + timedelta(minutes=5))
    OutboxEvent.objects.filter(pk=done.pk).update(handled_at=timezone.now())
    assert outbox.sweep() == 2
    assert sorted(relayed) == sorted([lost.pk, dead_worker.pk])
    assert fresh.pk not in relayed


@pytest.mark.django_db
def test_relay_swallows_a_broker_outage_so_the_commit_stands(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from broker import tasks

    def broker_down(*args: object) -> None:
        raise ConnectionError("Redis down")

    monkeypatch.setattr(tasks.outbox_dispatch, "delay", broker_down)
    outbox.relay(1)  # logs and returns: the sweeper will resend


@pytest.mark.django_db
def test_verifying_an_organisation_writes_its_notification_to_the_outbox(
    operator,
    django_capture_on_commit_callbacks,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    relayed: list[int] = []
    monkeypatch.setattr(outbox, "relay", relayed.append)
    organisation = OrganisationFactory(verification_state="pending", verified_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        services.organisation_verify(actor=operator, organisation=organisation)
    event = OutboxEvent.objects.get(topic="organisation.verified")
    assert event.payload == {"organisation_id": organisation.pk}
    assert relayed == [event.pk]
    outbox.dispatch(event.pk)
    assert [message.to for message in mail.outbox] == [[organisation.contact_email]]
    assert mail.outbox[0].extra_headers["X-Tiers-Event-Id"] == str(event.pk)


@pytest.mark.django_db
def test_verifying_twice_emits_once(operator) -> None:  # type: ignore[no-untyped-def]
    organisation = OrganisationFactory(verification_state="pending", verified_at=None)
    services.organisation_verify(actor=operator, organisation=organisation)
    services.organisation_verify(actor=operator, organisation=organisation)
    assert OutboxEvent.objects.filter(topic="organisation.verified").count() == 1
    assert Organisation.objects.get(pk=organisation.pk).is_verified
