"""Expiry jobs seen from data sharing: expired consents leave the next read, expired grants lose their tokens."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from broker.models import AuditBody, Organisation, OutboxEvent, User
from consent import expiry as consent_expiry
from consent.models import ConsentModule, ConsentRecord
from sharing import delivery
from sharing.expiry import grants_expire_due
from sharing.models import Agreement, Dataset, Grant
from tests.broker.oauth.conftest import make_grant, register_secret_client, token_of
from tests.concurrency import both_at_once
from tests.sharing.conftest import RESEARCH, consent_to, grant_for, link, trips_csv, upload

ROWS = [
    ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
    ("T-ALICE", "2026-03-02", "Campus", "Gare", 4.5),
    ("T-BOB", "2026-03-01", "Port", "Mairie", 2.0),
]


@pytest.fixture
def loaded(holder_admin: User, trips: Dataset, agreement: Agreement) -> Dataset:
    upload(holder_admin, trips, trips_csv(ROWS))
    return trips


def read(grant: Grant) -> list[dict[str, object]]:
    lines = b"".join(delivery.stream_jsonl(delivery.open_read(grant))).decode().splitlines()
    return [json.loads(line) for line in lines]


# --- consents ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_expired_consent_stops_deliveries_on_the_next_read(
    loaded: Dataset, alice: User, holder: Organisation, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    link(alice, holder, "T-ALICE")
    (record,) = consent_to(alice, module, RESEARCH)
    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    assert len(read(grant)) == 2

    ConsentRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert consent_expiry.consents_expire_due() == 1

    record.refresh_from_db()
    assert record.state == ConsentRecord.State.EXPIRED
    assert read(grant) == []
    assert OutboxEvent.objects.filter(topic="consent.expired", payload={"consent": str(record.pk)}).count() == 1


# --- grants --------------------------------------------------------------------------------------


@pytest.fixture
def grants(data_user: Organisation, trips: Dataset) -> dict[str, Grant]:
    now = timezone.now()
    started = now - datetime.timedelta(days=10)
    return {
        "ended": make_grant(data_user, trips, starts_at=started, ends_at=now - datetime.timedelta(minutes=1)),
        "running": make_grant(data_user, trips, starts_at=started, ends_at=now + datetime.timedelta(days=1)),
        "revoked": make_grant(
            data_user, trips, starts_at=started, ends_at=now - datetime.timedelta(days=1), state=Grant.State.REVOKED
        ),
    }


@pytest.mark.django_db
def test_ended_grants_expire_once_with_their_audit_entry_and_event(grants: dict[str, Grant]) -> None:
    assert grants_expire_due() == 1
    assert grants_expire_due() == 0

    states = {name: Grant.objects.get(pk=grant.pk).state for name, grant in grants.items()}
    assert states == {"ended": "expired", "running": "active", "revoked": "revoked"}
    ended = grants["ended"]
    (entry,) = AuditBody.objects.filter(verb="grant.expired")
    assert entry.subject == f"grant:{ended.pk}"
    assert json.loads(bytes(entry.canonical))["actor"] == "system"
    assert entry.citizen_id is None
    (event,) = OutboxEvent.objects.filter(topic="sharing.grant_expired")
    assert event.payload == {"grant": str(ended.pk)}


@pytest.mark.django_db
def test_a_grant_expires_when_now_passes_its_end(grants: dict[str, Grant]) -> None:
    assert grants_expire_due(now=timezone.now() + datetime.timedelta(days=2)) == 2
    assert Grant.objects.filter(state=Grant.State.EXPIRED).count() == 2


@pytest.mark.django_db
def test_an_expired_grant_refuses_its_tokens(
    api: APIClient, user_admin: User, data_user: Organisation, trips: Dataset
) -> None:
    now = timezone.now()
    grant = make_grant(
        data_user, trips, starts_at=now - datetime.timedelta(days=1), ends_at=now + datetime.timedelta(hours=1)
    )
    client, secret = register_secret_client(user_admin, data_user, name="city batch", scopes=("grants",))
    token = token_of(api, client, secret, scope=f"grant:{grant.pk}")["access_token"]

    def records() -> Any:
        return api.get(f"/api/v1/grants/{grant.pk}/records", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert records().status_code == 200
    Grant.objects.filter(pk=grant.pk).update(ends_at=now - datetime.timedelta(minutes=1))
    assert grants_expire_due() == 1
    refused = records()
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]


@pytest.fixture
def many_ended(data_user: Organisation, trips: Dataset) -> list[Grant]:
    now = timezone.now()
    return [
        make_grant(
            data_user, trips, starts_at=now - datetime.timedelta(days=2), ends_at=now - datetime.timedelta(hours=1)
        )
        for _ in range(12)
    ]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_expire_each_grant_once(many_ended: list[Grant]) -> None:
    counts = both_at_once(lambda: grants_expire_due(batch=3))
    assert sum(counts) == 12
    assert Grant.objects.filter(state=Grant.State.EXPIRED).count() == 12
    assert AuditBody.objects.filter(verb="grant.expired").count() == 12
    assert OutboxEvent.objects.filter(topic="sharing.grant_expired").count() == 12
