"""The audit trail: one call for every app, written in the caller's transaction.

    audit.record(verb="consent.withdrawn", actor=citizen, subject=consent,
                 details={"purpose": "dpv:ResearchAndDevelopment"}, citizen=citizen)

Each entry is a leaf of a verifiable transparency log (RFC 9162): the leaf is
SHA-256(0x00 || canonical bytes), where the canonical bytes are the RFC 8785
JSON of a random salt and the event. The event sits beside the leaf in an
erasable store; the sequencer later gives the leaf its index and signs a
checkpoint. See docs/audit.md.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import Any

import psycopg
import rfc8785
from django.db import connection, models
from django.utils import timezone

from broker.models import AuditBody, AuditEntry, OAuthClient, Organisation, User
from broker.transparency.merkle import leaf_hash

VERB = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
SALT_BYTES = 16

Actor = User | Organisation | OAuthClient | str | None
Subject = models.Model | str


def actor_ref(actor: Actor) -> str:
    """How an entry names who acted: `system`, `operator:<id>`, `user:<id>`, `organisation:<slug>`, `client:<id>`."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if isinstance(actor, Organisation):
        return f"organisation:{actor.slug}"
    if isinstance(actor, OAuthClient):
        return f"client:{actor.client_id}"
    return f"operator:{actor.pk}" if actor.is_operator else f"user:{actor.pk}"


def subject_ref(subject: Subject) -> str:
    """How an entry names what it is about: `<model>:<id>`, organisations by slug."""
    if isinstance(subject, str):
        return subject
    if isinstance(subject, Organisation):
        return f"organisation:{subject.slug}"
    return f"{subject._meta.model_name}:{subject.pk}"


def canonical_event(
    *, salt: bytes, verb: str, actor: str, subject: str, details: Mapping[str, Any], time: str
) -> bytes:
    """The exact bytes a leaf commits to (RFC 8785 JSON)."""
    event: dict[str, Any] = {
        "salt": base64.b64encode(salt).decode(),
        "verb": verb,
        "actor": actor,
        "subject": subject,
        "details": dict(details),
        "time": time,
    }
    return rfc8785.dumps(event)


def record(
    *,
    verb: str,
    actor: Actor,
    subject: Subject,
    details: Mapping[str, Any] | None = None,
    citizen: User | int | None = None,
) -> AuditEntry:
    """Write an audit entry in the caller's transaction; `citizen` makes it personal.

    Appending takes no lock: the sequencer orders entries later, so writers never
    wait on each other here.
    """
    if not VERB.match(verb):
        raise ValueError(f"audit verb {verb!r} is not dotted lowercase, like 'consent.withdrawn'")
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction of the change it records")
    now = timezone.now()
    subject_name = subject_ref(subject)
    canonical = canonical_event(
        salt=os.urandom(SALT_BYTES),
        verb=verb,
        actor=actor_ref(actor),
        subject=subject_name,
        details=details or {},
        time=now.isoformat().replace("+00:00", "Z"),
    )
    leaf = leaf_hash(canonical)
    citizen_id = citizen.pk if isinstance(citizen, User) else citizen
    if connection.vendor == "postgresql":
        entry_id = _insert_entry_and_body([leaf, now, canonical, verb, subject_name, citizen_id])
        return AuditEntry(pk=entry_id, leaf_hash=leaf, created_at=now)
    entry = AuditEntry.objects.create(leaf_hash=leaf, created_at=now)
    AuditBody.objects.create(entry=entry, canonical=canonical, verb=verb, subject=subject_name, citizen_id=citizen_id)
    return entry


# The leaf and its body in one statement, so one round trip. VALUES rather than
# SELECT: with server-side binding the parameters take the columns' types.
_INSERT_ENTRY_AND_BODY = """
WITH entry AS (
    INSERT INTO broker_auditentry (leaf_hash, created_at) VALUES (%s, %s) RETURNING id
)
INSERT INTO broker_auditbody (entry_id, canonical, verb, subject, citizen_id)
VALUES ((SELECT id FROM entry), %s, %s, %s, %s)
RETURNING entry_id
"""


def _insert_entry_and_body(params: list[Any]) -> int:
    """Run the insert as a prepared statement: parsed and planned once per connection, not per entry.

    Django binds parameters on the client and leaves psycopg's prepared
    statements off (`prepare_threshold` None, for poolers' sake). This one
    statement runs in every transaction that changes state, so it alone opts in:
    a server-binding cursor, with the connection's threshold at 0 while it runs.
    The statement is protocol-level; psycopg drops it after a rollback (DEALLOCATE
    ALL, which PgBouncer passes on from 1.22) and prepares it again at the next entry.
    """
    driver = connection.connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = 0
    try:
        raw: Any = psycopg.Cursor(driver)  # django-stubs call the driver's cursor a CursorWrapper
        wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
        with wrapped as cursor:  # Django's wrapper: its error classes, query log and execute wrappers
            cursor.execute(_INSERT_ENTRY_AND_BODY, params)
            (entry_id,) = cursor.fetchone()
    finally:
        driver.prepare_threshold = threshold
    return int(entry_id)


def erase_citizen(*, actor: Actor, citizen_id: int) -> int:
    """Delete the events about a citizen and their salts; every leaf, root and proof stays valid.

    The erasure itself is recorded, without naming the citizen.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.erase_citizen() must run inside the erasure's transaction")
    erased, _ = AuditBody.objects.filter(citizen_id=citizen_id).delete()
    record(verb="audit.citizen_erased", actor=actor, subject="citizen", details={"entries": erased})
    return erased
