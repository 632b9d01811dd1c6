"""Retention jobs: withdrawn datasets' vault data is purged and shredded, old delivery logs are deleted."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from broker.models import AuditBody, Organisation, User
from sharing import selectors, services
from sharing.models import DataKey, Dataset, Delivery, DeliverySubject, Grant, Record
from sharing.retention import SHREDDED, delivery_logs_purge_due, vault_purge_due
from tests.broker.oauth.conftest import make_grant
from tests.concurrency import both_at_once
from tests.sharing.conftest import TRIPS_SCHEMA, trips_csv, upload

ROWS = [
    ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
    ("T-BOB", "2026-03-01", "Port", "Mairie", 2.0),
]


def hosted(holder_admin: User, slug: str) -> Dataset:
    dataset = services.dataset_register(
        by=holder_admin,
        holder=holder_admin.memberships.get().organisation,
        slug=slug,
        title=slug.title(),
        mode=Dataset.Mode.HOSTED,
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )
    upload(holder_admin, dataset, trips_csv(ROWS))
    return dataset


def details(body: AuditBody) -> dict[str, object]:
    return dict(json.loads(bytes(body.canonical))["details"])


# --- the vault -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_withdrawn_dataset_is_purged_once_no_grant_on_it_is_active(
    holder_admin: User, data_user: Organisation
) -> None:
    kept, withdrawn = hosted(holder_admin, "kept"), hosted(holder_admin, "gone")
    services.dataset_withdraw(by=holder_admin, dataset=withdrawn, reason="the service closed")
    # A grant that runs to term after the withdrawal keeps the data readable until it ends.
    running = make_grant(data_user, withdrawn, ends_at=timezone.now() + datetime.timedelta(days=1))

    assert vault_purge_due() == 0
    assert Record.objects.filter(dataset=withdrawn).count() == 2

    Grant.objects.filter(pk=running.pk).update(state=Grant.State.EXPIRED)
    assert vault_purge_due() == 1
    assert vault_purge_due() == 0

    assert not Record.objects.filter(dataset=withdrawn).exists()
    (key,) = DataKey.objects.filter(dataset=withdrawn)
    assert bytes(key.wrapped_key) == SHREDDED
    assert key.retired_at is not None
    assert Record.objects.filter(dataset=kept).count() == 2
    assert all(bytes(key.wrapped_key) != SHREDDED for key in DataKey.objects.filter(dataset=kept))
    (entry,) = AuditBody.objects.filter(verb="dataset.purged")
    assert entry.subject == f"dataset:{withdrawn.pk}"
    assert details(entry) == {"records": 2, "keys_shredded": 1}


@pytest.mark.django_db
def test_a_dataset_withdrawn_after_now_is_not_purged_yet(holder_admin: User) -> None:
    dataset = hosted(holder_admin, "later")
    services.dataset_withdraw(by=holder_admin, dataset=dataset, reason="the service closed")
    assert vault_purge_due(now=timezone.now() - datetime.timedelta(hours=1)) == 0
    assert Record.objects.filter(dataset=dataset).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_purge_each_dataset_once(holder_admin: User) -> None:
    datasets = [hosted(holder_admin, f"set-{number}") for number in range(4)]
    for dataset in datasets:
        services.dataset_withdraw(by=holder_admin, dataset=dataset, reason="the service closed")

    counts = both_at_once(vault_purge_due)

    assert sum(counts) == 4
    assert not Record.objects.exists()
    assert AuditBody.objects.filter(verb="dataset.purged").count() == 4


# --- delivery logs -----------------------------------------------------------------------------------


def deliveries(grant: Grant, citizen: User, *, ages_in_days: list[int]) -> list[Delivery]:
    """Deliveries that included the citizen, as old as given (written directly: reads cannot be backdated)."""
    made = []
    for age in ages_in_days:
        delivery = Delivery.objects.create(
            grant=grant,
            kind=Delivery.Kind.HOSTED,
            at=timezone.now() - datetime.timedelta(days=age),
            records=1,
            subjects=1,
            subjects_digest="0" * 64,
            audit_entry_id=0,
        )
        DeliverySubject.objects.create(
            delivery=delivery, subject_ref="T-ALICE", pseudonym=f"p{age}", citizen=citizen, records=1
        )
        made.append(delivery)
    return made


@pytest.fixture
def grant(data_user: Organisation, trips: Dataset) -> Grant:
    return make_grant(data_user, trips)


@pytest.mark.django_db
def test_delivery_logs_past_retention_are_deleted_and_the_deliveries_stay(grant: Grant, alice: User) -> None:
    old, recent = deliveries(grant, alice, ages_in_days=[401, 399])

    assert delivery_logs_purge_due() == 1
    assert delivery_logs_purge_due() == 0

    assert [use.delivery_id for use in selectors.accesses_of(alice)] == [recent.pk]
    assert Delivery.objects.filter(pk__in=[old.pk, recent.pk]).count() == 2
    (entry,) = AuditBody.objects.filter(verb="delivery_log.purged")
    assert entry.citizen_id is None
    assert details(entry)["rows"] == 1
    assert details(entry)["retention_days"] == 400


@pytest.mark.django_db
def test_the_retention_is_a_setting(grant: Grant, alice: User, settings: object) -> None:
    settings.TIERS_DELIVERY_LOG_RETENTION_DAYS = 30  # type: ignore[attr-defined]
    deliveries(grant, alice, ages_in_days=[31, 29, 1])
    assert delivery_logs_purge_due() == 1
    assert DeliverySubject.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_log_purges_at_once_delete_each_row_once(data_user: Organisation, trips: Dataset, alice: User) -> None:
    deliveries(make_grant(data_user, trips), alice, ages_in_days=[401 + number for number in range(25)])

    counts = both_at_once(lambda: delivery_logs_purge_due(batch=4))

    assert sum(counts) == 25
    assert not DeliverySubject.objects.exists()
    purged = AuditBody.objects.filter(verb="delivery_log.purged")
    assert sum(int(str(details(entry)["rows"])) for entry in purged) == 25
