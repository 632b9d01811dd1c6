"""audit.record's insert on PostgreSQL: a prepared statement, and nothing else about writing changes."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection, transaction
from django.db.utils import DataError
from django.test.utils import CaptureQueriesContext

from broker import audit
from broker.models import AuditBody, AuditEntry


def prepared_statements() -> list[str]:
    """The statements this connection has prepared at the protocol level."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_audit_insert_is_prepared_and_no_other_statement_is(alice) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        audit.record(verb="test.first", actor=None, subject="x:1")
        audit.record(verb="test.second", actor=alice, subject="x:2", details={"n": 2})
        audit.record(verb="test.personal", actor=alice, subject="x:3", citizen=alice)
        statements = prepared_statements()
    assert statements
    assert all("INSERT INTO broker_auditbody" in statement for statement in statements)
    # Django's own queries stay bound on the client and unprepared.
    assert connection.connection.prepare_threshold is None
    assert AuditBody.objects.filter(verb__startswith="test.").count() == 3


@pytest.mark.django_db
def test_a_prepared_insert_still_commits_to_the_canonical_event() -> None:
    with transaction.atomic():
        for number in range(3):  # the second and third run the prepared statement
            entry = audit.record(verb="test.again", actor=None, subject=f"x:{number}", details={"n": number})
            body = AuditBody.objects.get(entry_id=entry.pk)
            assert bytes(AuditEntry.objects.get(pk=entry.pk).leaf_hash) == bytes(entry.leaf_hash)
            assert bytes(entry.leaf_hash) == hashlib.sha256(b"\x00" + bytes(body.canonical)).digest()
            assert (body.verb, body.subject, body.citizen_id) == ("test.again", f"x:{number}", None)


@pytest.mark.django_db
def test_the_insert_is_one_query_through_djangos_cursor() -> None:
    with transaction.atomic():
        for number in range(2):  # preparing, then running the prepared statement
            with CaptureQueriesContext(connection) as queries:
                audit.record(verb="test.logged", actor=None, subject=f"x:{number}")
            # Django's wrapper logged it; psycopg does not hand it the text of a prepared statement.
            assert len(queries.captured_queries) == 1


@pytest.mark.django_db
def test_a_failing_insert_raises_djangos_error_and_leaves_preparing_off() -> None:
    with pytest.raises(DataError), transaction.atomic():
        audit.record(verb="test.too_big", actor=None, subject="x:1", citizen=2**63)  # beyond bigint
    assert connection.connection.prepare_threshold is None
    assert not AuditBody.objects.filter(verb="test.too_big").exists()


def change_that_fails(verb: str) -> None:
    """Record an entry, then fail: the transaction or savepoint rolls back."""
    with transaction.atomic():
        audit.record(verb=verb, actor=None, subject="x:failed")
        raise RuntimeError("the change failed")


@pytest.mark.django_db(transaction=True)
def test_entries_are_written_after_a_rollback_drops_the_prepared_insert() -> None:
    with pytest.raises(RuntimeError):
        change_that_fails("test.rolled_back")
    # psycopg deallocates its prepared statements after a ROLLBACK; the next entry prepares again.
    assert prepared_statements() == []
    with transaction.atomic():
        audit.record(verb="test.after", actor=None, subject="x:2")
    with transaction.atomic():
        outer = audit.record(verb="test.kept", actor=None, subject="x:3")
        with pytest.raises(RuntimeError):
            change_that_fails("test.savepoint_rolled_back")
        latest = audit.record(verb="test.kept", actor=None, subject="x:5")
    assert sorted(AuditBody.objects.values_list("verb", "subject")) == [
        ("test.after", "x:2"),
        ("test.kept", "x:3"),
        ("test.kept", "x:5"),
    ]
    assert latest.pk > outer.pk
