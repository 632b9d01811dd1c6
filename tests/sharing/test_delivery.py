"""Hosted delivery: consent at the moment of each read, granted fields only, pseudonyms per reader."""

from __future__ import annotations

import json

import pytest

from broker.models import AuditBody, Organisation, User
from consent import services as consent
from consent.models import ConsentModule
from sharing import delivery, vault
from sharing.models import Agreement, Dataset, DeliverySubject, Grant
from tests.sharing.conftest import (
    PUBLIC_BENEFIT,
    RESEARCH,
    consent_to,
    grant_for,
    link,
    trips_csv,
    upload,
)

pytestmark = pytest.mark.django_db

ROWS = [
    ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
    ("T-ALICE", "2026-03-02", "Campus", "Gare", 4.5),
    ("T-BOB", "2026-03-01", "Port", "Mairie", 2.0),
    ("T-NOBODY", "2026-03-01", "Nord", "Sud", 7.25),
]


@pytest.fixture
def loaded(holder_admin: User, trips: Dataset, agreement: Agreement) -> Dataset:
    done = upload(holder_admin, trips, trips_csv(ROWS))
    assert (done.state, done.rows_loaded) == ("loaded", 4)
    return trips


@pytest.fixture
def citizens(alice: User, bob: User, holder: Organisation, module: ConsentModule) -> dict[str, User]:
    link(alice, holder, "T-ALICE")
    link(bob, holder, "T-BOB")
    consent_to(alice, module, RESEARCH)
    consent_to(bob, module, PUBLIC_BENEFIT)  # not research
    return {"alice": alice, "bob": bob}


def read(grant: Grant) -> list[dict[str, object]]:
    lines = b"".join(delivery.stream_jsonl(delivery.open_read(grant))).decode().splitlines()
    return [json.loads(line) for line in lines]


def test_a_read_includes_only_subjects_consenting_to_its_purpose_now(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation
) -> None:
    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    records = read(grant)
    assert len(records) == 2  # alice's two trips; bob consented to another purpose; T-NOBODY is not linked
    assert {r["origin"] for r in records} == {"Gare", "Campus"}
    assert all(set(r) == {"subject_pseudonym", "day", "origin", "destination"} for r in records)  # no km, no key
    assert "T-ALICE" not in json.dumps(records)


def test_withdrawal_takes_effect_on_the_very_next_read(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation
) -> None:
    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    assert len(read(grant)) == 2
    (record,) = citizens["alice"].consents.filter(purpose=RESEARCH)
    consent.consent_withdraw(citizen=citizens["alice"], record=record)
    assert read(grant) == []


def test_paused_and_expired_consents_exclude_too(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation
) -> None:
    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    (record,) = citizens["alice"].consents.filter(purpose=RESEARCH)
    consent.consent_pause(citizen=citizens["alice"], record=record)
    assert read(grant) == []
    consent.consent_resume(citizen=citizens["alice"], record=record)
    assert len(read(grant)) == 2
    record.refresh_from_db()
    type(record).objects.filter(pk=record.pk).update(expires_at=record.given_at)
    assert read(grant) == []


def test_each_reading_organisation_sees_its_own_stable_pseudonyms(
    loaded: Dataset,
    citizens: dict[str, User],
    user_admin: User,
    data_user: Organisation,
    lab_admin: User,
    lab: Organisation,
) -> None:
    city = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    labo = grant_for(lab_admin, lab, loaded, purpose=RESEARCH)
    city_names = {r["subject_pseudonym"] for r in read(city)}
    assert city_names == {r["subject_pseudonym"] for r in read(city)}  # stable across reads
    lab_names = {r["subject_pseudonym"] for r in read(labo)}
    assert len(city_names) == len(lab_names) == 1
    assert city_names.isdisjoint(lab_names)


def test_a_read_is_audited_and_shows_in_the_citizens_history(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation
) -> None:
    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    opened = delivery.open_read(grant)
    assert (opened.delivery.records, opened.delivery.subjects) == (2, 1)
    body = AuditBody.objects.get(entry_id=opened.delivery.audit_entry_id)
    event = json.loads(body.canonical)
    assert event["verb"] == "grant.read"
    assert event["details"]["records"] == 2
    pseudonym = vault.pseudonym(vault.pseudonym_key(data_user), loaded.holder_id, "T-ALICE")
    assert event["details"]["subjects_sha256"] == vault.subjects_digest([pseudonym])
    included = DeliverySubject.objects.get(delivery=opened.delivery)
    assert (included.citizen, included.records, included.pseudonym) == (citizens["alice"], 2, pseudonym)


def test_csv_delivery_has_a_header_and_defuses_formulas(
    holder_admin: User, trips: Dataset, agreement: Agreement, alice: User, holder: Organisation, module: ConsentModule,
    user_admin: User, data_user: Organisation,
) -> None:  # fmt: skip
    upload(holder_admin, trips, trips_csv([("T-ALICE", "2026-03-01", "=HYPERLINK(1)", "Gare", 1.0)]))
    link(alice, holder, "T-ALICE")
    consent_to(alice, module, RESEARCH)
    grant = grant_for(user_admin, data_user, trips, purpose=RESEARCH)
    text = b"".join(delivery.stream_csv(delivery.open_read(grant))).decode()
    header, row = text.splitlines()
    assert header == "subject_pseudonym,day,origin,destination"
    assert ",'=HYPERLINK(1),Gare" in row


def test_a_non_personal_dataset_needs_a_grant_but_no_consent(
    holder_admin: User, holder: Organisation, operator: User, user_admin: User, data_user: Organisation
) -> None:
    from sharing import services
    from tests.sharing.conftest import agreement_in_force

    stops = services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="stops",
        title="Bus stops",
        mode=Dataset.Mode.HOSTED,
        table_schema={"fields": [{"name": "name", "type": "string"}, {"name": "lat", "type": "number"}]},
    )
    agreement_in_force(holder_admin, operator, [stops], consent_modules=[])
    upload(holder_admin, stops, b"name,lat\nGare,45.1\nPort,45.2\n")
    grant = grant_for(user_admin, data_user, stops, purpose=PUBLIC_BENEFIT, fields=["name"])
    assert sorted(read(grant), key=lambda r: str(r["name"])) == [{"name": "Gare"}, {"name": "Port"}]


def test_payloads_are_encrypted_at_rest_and_bound_to_their_subject(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation
) -> None:
    from cryptography.exceptions import InvalidTag

    from sharing.models import Record

    record = Record.objects.filter(dataset=loaded, subject_ref="T-ALICE").first()
    assert record is not None
    sealed = bytes(record.payload)
    assert b"Gare" not in sealed
    assert b"Campus" not in sealed
    aead = vault.cipher(loaded.pk, record.key_version)
    assert b"Campus" in vault.decrypt_payload(aead, sealed, vault.record_aad(loaded.pk, "T-ALICE"))
    with pytest.raises(InvalidTag):  # moved to another subject, it no longer opens
        vault.decrypt_payload(aead, sealed, vault.record_aad(loaded.pk, "T-BOB"))


def test_rotating_the_data_key_keeps_every_record_readable(
    loaded: Dataset, citizens: dict[str, User], user_admin: User, data_user: Organisation, holder_admin: User
) -> None:
    from sharing import ingest, services
    from sharing.models import DataKey, Record

    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    before = sorted(json.dumps(r, sort_keys=True) for r in read(grant))
    version = services.data_key_rotate(by=holder_admin, dataset=loaded)
    assert sorted(json.dumps(r, sort_keys=True) for r in read(grant)) == before  # mid-rotation, old key still reads
    assert ingest.reencrypt(str(loaded.pk), version) == 4
    assert set(Record.objects.filter(dataset=loaded).values_list("key_version", flat=True)) == {version}
    assert DataKey.objects.get(dataset=loaded, version=version - 1).retired_at is not None
    vault.forget_keys()
    assert sorted(json.dumps(r, sort_keys=True) for r in read(grant)) == before


def test_records_a_holder_deletes_are_gone_from_the_next_read_and_the_deletion_is_audited(
    loaded: Dataset,
    citizens: dict[str, User],
    user_admin: User,
    data_user: Organisation,
    holder_admin: User,
    lab_admin: User,
) -> None:
    from broker.errors import NotFound
    from sharing import services
    from sharing.models import Record

    grant = grant_for(user_admin, data_user, loaded, purpose=RESEARCH)
    assert len(read(grant)) == 2
    with pytest.raises(NotFound):  # another organisation's member: not even told the dataset's holder exists
        services.records_delete(by=lab_admin, dataset=loaded, subject_refs=["T-ALICE"])
    deleted = services.records_delete(by=holder_admin, dataset=loaded, subject_refs=["T-ALICE", "T-ALICE", "T-UNKNOWN"])
    assert deleted == 2
    assert read(grant) == []
    assert sorted(Record.objects.filter(dataset=loaded).values_list("subject_ref", flat=True)) == ["T-BOB", "T-NOBODY"]
    event = json.loads(bytes(AuditBody.objects.get(verb="dataset.records_deleted").canonical))
    assert event["details"] == {"subjects": 2, "records": 2}  # how many, never whom
    assert "T-ALICE" not in json.dumps(event)
