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
    monkeypatch.setattr(outbox, "relay", lambda event_id: relayed.append(event_id) or True)
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


@pytest.fixture
def other_connection(transactional_db: None):  # type: ignore[no-untyped-def]
    """A second database session, as another worker would hold."""
    import psycopg
    from django.db import connection

    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"] or "127.0.0.1",
        port=int(database["PORT"] or 5432),
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    ) as session:
        yield session


def _committed_event(payload: dict[str, object] | None = None) -> OutboxEvent:
    with transaction.atomic():
        return outbox.emit("test.flaky", payload or {})


def test_an_event_another_worker_is_claiming_is_skipped_without_waiting(other_connection, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(outbox, "relay", lambda event_id: True)
    event = _committed_event()
    other_connection.execute("SELECT id FROM broker_outboxevent WHERE id = %s FOR UPDATE", [event.pk])
    other_connection.execute("SET lock_timeout = '5s'")

    started = timezone.now()
    assert outbox.dispatch(event.pk) is False  # SKIP LOCKED: no wait on the other claim
    assert (timezone.now() - started).total_seconds() < 2
    assert calls == []

    other_connection.rollback()  # the other worker gave up its claim
    assert outbox.dispatch(event.pk) is True
    assert calls == [event.pk]


def test_two_sweepers_at_once_take_different_events(other_connection, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    relayed: list[int] = []
    monkeypatch.setattr(outbox, "relay", lambda event_id: relayed.append(event_id) or True)
    settings.OUTBOX_RESEND_AFTER_SECONDS = 0
    events = [_committed_event() for _ in range(4)]
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    held = [event.pk for event in events[:2]]
    other_connection.execute("SELECT id FROM broker_outboxevent WHERE id = ANY(%s) FOR UPDATE", [held])
    relayed.clear()  # the relays of the commits themselves

    assert outbox.sweep() == 2
    assert relayed == [event.pk for event in events[2:]]


@pytest.mark.django_db
def test_the_sweeper_resends_in_batches(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    relayed: list[int] = []
    monkeypatch.setattr(outbox, "relay", lambda event_id: relayed.append(event_id) or True)
    settings.OUTBOX_RESEND_AFTER_SECONDS = 0
    events = [_committed_event() for _ in range(7)]
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    assert outbox.sweep(batch=3) == 7
    assert relayed == [event.pk for event in events]


@pytest.mark.django_db
def test_the_sweeper_stops_while_the_broker_is_down(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    attempts: list[int] = []
    monkeypatch.setattr(outbox, "relay", lambda event_id: attempts.append(event_id) and False)
    settings.OUTBOX_RESEND_AFTER_SECONDS = 0
    for _ in range(3):
        _committed_event()
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    assert outbox.sweep() == 0
    assert len(attempts) == 1  # not one failed publish per pending event


@pytest.mark.django_db
def test_an_event_that_keeps_failing_is_quarantined_after_the_last_attempt(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_MAX_ATTEMPTS = 3
    event = _committed_event({"fail": True})
    for attempt in range(1, 4):
        OutboxEvent.objects.filter(pk=event.pk).update(leased_until=None)  # the backoff has run out
        with pytest.raises(ConnectionError):
            outbox.dispatch(event.pk)
        event.refresh_from_db()
        assert event.attempts == attempt

    assert event.handled_at is None  # not handled: set aside
    assert event.quarantined_at is not None
    assert event.last_error.startswith("3 attempts failed; last error: ConnectionError")
    assert list(outbox.quarantined()) == [event]
    assert outbox.sweep() == 0
    assert outbox.dispatch(event.pk) is False
    assert len(calls) == 3


@pytest.mark.django_db
def test_an_event_whose_handler_kills_its_worker_is_quarantined_at_the_next_claim(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_MAX_ATTEMPTS = 3
    event = _committed_event()
    # Three workers died in its handler: each claim counted, none finished, the leases ran out.
    OutboxEvent.objects.filter(pk=event.pk).update(attempts=3, leased_until=timezone.now() - timedelta(seconds=1))

    assert outbox.dispatch(event.pk) is False
    event.refresh_from_db()
    assert event.quarantined_at is not None
    assert event.last_error.startswith("3 attempts without success")
    assert calls == []


@pytest.mark.django_db
def test_a_quarantined_event_can_be_requeued_once_fixed(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(outbox, "relay", lambda event_id: True)
    settings.OUTBOX_MAX_ATTEMPTS = 1
    event = _committed_event({"fail": True})
    with pytest.raises(ConnectionError):
        outbox.dispatch(event.pk)
    OutboxEvent.objects.filter(pk=event.pk).update(payload={})  # the cause is fixed

    assert outbox.requeue(event.pk) is True
    assert outbox.dispatch(event.pk) is True
    event.refresh_from_db()
    assert event.attempts == 1
    assert event.last_error == ""
    assert not outbox.quarantined().exists()
