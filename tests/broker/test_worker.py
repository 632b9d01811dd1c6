"""Outbox events reach a real worker process through the real Redis."""

from __future__ import annotations

import pytest

from broker import services
from broker.models import OutboxEvent
from tests.conftest import WorkerProcess, wait_for
from tests.factories import OrganisationFactory, UserFactory


@pytest.mark.worker
def test_a_real_worker_handles_the_event_a_committed_change_wrote(
    celery_worker_process: WorkerProcess,
) -> None:
    operator = UserFactory(is_staff=True)
    organisation = OrganisationFactory(verification_state="pending", verified_at=None)
    services.organisation_verify(actor=operator, organisation=organisation)  # commits, then relays

    event = OutboxEvent.objects.get(topic="organisation.verified")
    wait_for(lambda: OutboxEvent.objects.filter(pk=event.pk, handled_at__isnull=False).exists())

    mails = [path.read_text() for path in celery_worker_process.mail_dir.glob("*.log")]
    assert len(mails) == 1
    assert f"To: {organisation.contact_email}" in mails[0]
    assert f"X-Tiers-Event-Id: {event.pk}" in mails[0]
    assert "outbox_dispatch" in celery_worker_process.log.read_text()


@pytest.mark.worker
def test_the_sweeper_hands_a_lost_event_to_a_real_worker(
    celery_worker_process: WorkerProcess,
    settings,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from broker import outbox, tasks

    operator = UserFactory(is_staff=True)
    organisation = OrganisationFactory(verification_state="pending", verified_at=None)
    monkeypatch.setattr(outbox, "relay", lambda event_id: None)  # the message is lost
    services.organisation_verify(actor=operator, organisation=organisation)
    monkeypatch.undo()
    event = OutboxEvent.objects.get(topic="organisation.verified")
    assert event.handled_at is None

    settings.OUTBOX_RESEND_AFTER_SECONDS = 0
    assert tasks.outbox_sweep() == 1
    wait_for(lambda: OutboxEvent.objects.filter(pk=event.pk, handled_at__isnull=False).exists())
