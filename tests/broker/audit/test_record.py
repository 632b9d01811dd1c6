"""audit.record: one call for every app, in the caller's transaction, append-only."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from broker import audit
from broker.models import AuditBody, AuditEntry, MerkleNode
from tests.broker.audit.conftest import write_entries


@pytest.mark.django_db
def test_an_entry_commits_to_its_salted_canonical_event(operator) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        entry = audit.record(
            verb="organisation.verified",
            actor=operator,
            subject="organisation:volta",
            details={"b": 2, "a": 1},
        )
    body = AuditBody.objects.get(entry=entry)
    canonical = bytes(body.canonical)
    assert bytes(entry.leaf_hash) == hashlib.sha256(b"\x00" + canonical).digest()
    event = json.loads(canonical)
    assert event["verb"] == "organisation.verified"
    assert event["actor"] == f"operator:{operator.pk}"
    assert event["subject"] == "organisation:volta"
    assert event["details"] == {"a": 1, "b": 2}
    assert len(base64.b64decode(event["salt"])) == audit.SALT_BYTES
    assert canonical.startswith(b'{"actor":')  # RFC 8785: members sorted, no spaces
    assert b" " not in canonical.replace(b"organisation.verified", b"")


@pytest.mark.django_db
def test_two_identical_events_get_different_leaves() -> None:
    with transaction.atomic():
        first = audit.record(verb="test.same", actor=None, subject="x:1")
        second = audit.record(verb="test.same", actor=None, subject="x:1")
    assert first.leaf_hash != second.leaf_hash


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_entry() -> None:
    def change_that_fails() -> None:
        with transaction.atomic():
            audit.record(verb="test.rolled_back", actor=None, subject="x:1")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert not AuditEntry.objects.exists()
    assert not AuditBody.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(verb="test.loose", actor=None, subject="x:1")


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["Consent.Withdrawn", "withdrawn", "consent..withdrawn", "consent.withdrawn "])
def test_verbs_must_be_dotted_lowercase(verb: str) -> None:
    with transaction.atomic(), pytest.raises(ValueError, match="dotted lowercase"):
        audit.record(verb=verb, actor=None, subject="x:1")


def _execute(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE broker_auditentry SET leaf_hash = %s WHERE id = %s",
        "UPDATE broker_auditentry SET created_at = now() WHERE id = %s AND %s IS NOT NULL",
        "DELETE FROM broker_auditentry WHERE id = %s AND %s IS NOT NULL",
        "UPDATE broker_auditbody SET verb = 'forged.verb' WHERE entry_id = %s AND %s IS NOT NULL",
    ],
)
def test_the_database_refuses_to_rewrite_or_delete_an_entry(sql: str) -> None:
    write_entries(1)
    entry = AuditEntry.objects.get()
    params: list[object] = [b"\x00" * 32, entry.pk] if "leaf_hash" in sql else [entry.pk, 1]
    with pytest.raises(ProgrammingError, match="pgtrigger"):
        _execute(sql, params)


@pytest.mark.django_db
def test_a_leaf_index_is_set_once_and_never_changed(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(2, batches=1)
    entry = AuditEntry.objects.get(leaf_index=0)
    with pytest.raises(ProgrammingError, match="pgtrigger"):
        _execute("UPDATE broker_auditentry SET leaf_index = 7 WHERE id = %s", [entry.pk])


@pytest.mark.django_db
def test_tree_nodes_cannot_be_rewritten(log_of) -> None:  # type: ignore[no-untyped-def]
    log_of(2, batches=1)
    assert MerkleNode.objects.count() == 3
    with pytest.raises(ProgrammingError, match="pgtrigger"):
        _execute("UPDATE broker_merklenode SET hash = %s WHERE level = 0 AND index = %s", [b"\x01" * 32, 0])
    with pytest.raises(ProgrammingError, match="pgtrigger"):
        _execute("DELETE FROM broker_checkpoint WHERE tree_size = %s AND %s IS NOT NULL", [2, 1])


@pytest.mark.django_db
def test_verifying_an_organisation_is_audited_in_the_same_transaction(operator) -> None:  # type: ignore[no-untyped-def]
    from broker import services
    from tests.factories import OrganisationFactory

    organisation = OrganisationFactory(verification_state="pending", verified_at=None)
    services.organisation_verify(actor=operator, organisation=organisation)
    services.organisation_verify(actor=operator, organisation=organisation)  # already done: no second entry
    bodies = AuditBody.objects.filter(verb="organisation.verified")
    assert [body.subject for body in bodies] == [f"organisation:{organisation.slug}"]
