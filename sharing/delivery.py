"""Consent-aware delivery: hosted reads streamed by Tiers, and decisions for federated holders.

A hosted read first decides, in one transaction, which subjects it includes
(those consenting at this moment), records them with their pseudonyms, and
writes its audit entry; then it streams the records of exactly those subjects,
decrypted and projected to the granted fields, from a server-side cursor, so
memory stays flat however large the grant. A federated holder asks the same
question through `decide()` and reports what it delivered with a signed access
receipt (`receipt_record()`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker import audit, outbox
from broker import policy as org_policy
from broker.api_base import by_id
from broker.errors import InvalidInput, NotFound
from broker.oauth.tokens import ClientPrincipal
from broker.observability import metrics
from broker.policy import OrgAction
from sharing import eligibility, policy, vault
from sharing.models import Dataset, Delivery, DeliverySubject, Grant
from sharing.schemas import FORMULA_STARTS

FETCH_ROWS = 2000
FLUSH_BYTES = 1 << 16
MAX_DECISION_SUBJECTS = 1000
RECEIPT_TYPE = "tiers-access-receipt+jwt"
RECEIPT_MAX_AGE_SECONDS = 300


def use_of(grant: Grant) -> eligibility.Use:
    agreement = grant.agreement
    return eligibility.Use(
        holder_id=grant.dataset.holder_id,
        purpose=grant.purpose,
        recipient_category=grant.recipient_category,
        data_categories=tuple(grant.dataset.data_categories),
        module_slugs=tuple(agreement.terms.get("consent_modules", [])) if agreement else (),
    )


@dataclass(frozen=True)
class Read:
    """One hosted read, recorded: what it will stream."""

    delivery: Delivery
    grant: Grant
    fields: list[str]


def open_read(grant: Grant) -> Read:
    """Decide who the read includes, record it with its audit entry, and commit before any byte goes out."""
    dataset = grant.dataset
    if dataset.mode != Dataset.Mode.HOSTED:
        raise NotFound("This grant's data is served by the holder's API, not by Tiers.")
    with transaction.atomic():
        delivery = Delivery(grant=grant, kind=Delivery.Kind.HOSTED, records=0, subjects=0, subjects_digest="")
        included: list[Included] = []
        if dataset.is_personal:
            secret = vault.pseudonym_key(grant.organisation_id)
            counts = dict(_records_per_subject(dataset.pk))
            links = eligibility.consenting_links(use_of(grant)).values_list("subject_ref", "citizen_id")
            included = [
                Included(ref, citizen_id, vault.pseudonym(secret, dataset.holder_id, ref), counts.get(ref, 0))
                for ref, citizen_id in links.iterator(chunk_size=10_000)
            ]
            delivery.subjects = len(included)
            delivery.subjects_digest = vault.subjects_digest(subject.pseudonym for subject in included)
            delivery.records = sum(subject.records for subject in included)
        else:
            delivery.records = dataset.records.count()
        entry = audit.record(
            verb="grant.read",
            actor=f"organisation:{grant.organisation.slug}",
            subject=grant,
            details={
                "delivery": str(delivery.pk),
                "records": delivery.records,
                "subjects": delivery.subjects,
                "subjects_sha256": delivery.subjects_digest,
                "purpose": grant.purpose,
            },
        )
        delivery.audit_entry_id = entry.pk
        delivery.save(force_insert=True)
        _write_included(delivery, included)
        outbox.emit("sharing.delivery_recorded", {"delivery": str(delivery.pk)})
    metrics.RECORDS_DELIVERED.labels(kind="hosted").inc(delivery.records)
    return Read(delivery=delivery, grant=grant, fields=list(grant.fields))


class Included(NamedTuple):
    """A subject a read includes: the holder's reference, the citizen, the pseudonym, how many records."""

    subject_ref: str
    citizen_id: int | None
    pseudonym: str
    records: int


def _write_included(delivery: Delivery, included: list[Included]) -> None:
    """Record who the read includes: COPY on PostgreSQL (tens of thousands of rows), batches elsewhere."""
    if connection.vendor == "postgresql":
        columns = "delivery_id, subject_ref, citizen_id, pseudonym, records"
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY sharing_deliverysubject ({columns}) FROM STDIN") as copy,
        ):
            for subject in included:
                copy.write_row(
                    (delivery.pk, subject.subject_ref, subject.citizen_id, subject.pseudonym, subject.records)
                )
        return
    DeliverySubject.objects.bulk_create(
        (DeliverySubject(delivery=delivery, **subject._asdict()) for subject in included), batch_size=5000
    )


def _records_per_subject(dataset_id: uuid.UUID) -> Iterable[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT subject_ref, count(*) FROM sharing_record WHERE dataset_id = %s GROUP BY subject_ref",
            [dataset_id.hex if connection.vendor == "sqlite" else dataset_id],
        )
        yield from cursor.fetchall()


_STREAM_PERSONAL = """
SELECT s.pseudonym, r.subject_ref, r.key_version, r.payload
FROM sharing_record r
JOIN sharing_deliverysubject s ON s.subject_ref = r.subject_ref AND s.delivery_id = %s
WHERE r.dataset_id = %s
"""
_STREAM_ALL = "SELECT '', r.subject_ref, r.key_version, r.payload FROM sharing_record r WHERE r.dataset_id = %s"


def _rows(read: Read) -> Iterator[tuple[str, str, int, bytes]]:
    """The read's encrypted rows, from a server-side cursor on PostgreSQL."""
    dataset_id = read.grant.dataset_id
    sqlite = connection.vendor == "sqlite"
    ids = [dataset_id.hex if sqlite else dataset_id]
    if read.grant.dataset.is_personal:
        query = _STREAM_PERSONAL
        ids = [read.delivery.pk.hex if sqlite else read.delivery.pk, *ids]
    else:
        query = _STREAM_ALL
    with transaction.atomic():
        if sqlite:
            with connection.chunked_cursor() as cursor:
                cursor.execute(query, ids)
                while rows := cursor.fetchmany(FETCH_ROWS):
                    yield from rows
            return
        # A binary server-side cursor: rows arrive 2,000 at a time, bytea without hex decoding.
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor(name=f"delivery_{read.delivery.pk.hex}", binary=True) as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(query, ids)
            while rows := cursor.fetchmany(FETCH_ROWS):
                yield from rows


def _records(read: Read) -> Iterator[dict[str, Any]]:
    """Each included record: decrypted, projected to the granted fields, under its pseudonym."""
    dataset_id = read.grant.dataset_id
    fields = read.fields
    personal = read.grant.dataset.is_personal
    ciphers: dict[int, Any] = {}
    prefix = f"{dataset_id}\x00".encode()
    for pseudonym, subject_ref, version, payload in _rows(read):
        aead = ciphers.get(version)
        if aead is None:
            aead = ciphers[version] = vault.cipher(dataset_id, version)
        sealed = bytes(payload)
        values = orjson.loads(aead.decrypt(sealed[:12], sealed[12:], prefix + subject_ref.encode()))
        record = {"subject_pseudonym": pseudonym} if personal else {}
        for name in fields:
            record[name] = values.get(name)
        yield record


def stream_jsonl(read: Read) -> Iterator[bytes]:
    """The read as JSON Lines, in chunks of about 64 KiB."""
    dumps = orjson.dumps
    buffer: list[bytes] = []
    size = 0
    for record in _records(read):
        line = dumps(record)
        buffer.append(line)
        size += len(line) + 1
        if size >= FLUSH_BYTES:
            buffer.append(b"")
            yield b"\n".join(buffer)
            buffer, size = [], 0
    if buffer:
        buffer.append(b"")
        yield b"\n".join(buffer)


def stream_csv(read: Read) -> Iterator[bytes]:
    """The read as CSV with a header row; cells that a spreadsheet would run as formulas are quoted."""
    columns = (["subject_pseudonym"] if read.grant.dataset.is_personal else []) + read.fields
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_cell(column) for column in columns])
    for record in _records(read):
        writer.writerow([_csv_cell(record.get(column)) for column in columns])
        if out.tell() >= FLUSH_BYTES:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


# A line break inside a cell followed by a formula: a lax reader would start a row, and a formula, there.
_FORMULA_AFTER_BREAK = re.compile(r"([\r\n])(?=[=+\-@\t])")


def _csv_cell(value: Any) -> Any:
    """OWASP CSV injection: no cell, nor any line within a cell, starts a formula."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        if value[:1] in FORMULA_STARTS:
            value = "'" + value
        value = _FORMULA_AFTER_BREAK.sub(r"\1'", value)
    return value


# --- federated: decisions and receipts -----------------------------------------------------------


def decide(*, by: ClientPrincipal, grant: Grant, subject_refs: Sequence[str]) -> dict[str, Any]:
    """Which of these holder references a federated grant may include now, with their pseudonyms."""
    policy.require_decider(by, grant)
    if grant.dataset.mode != Dataset.Mode.FEDERATED:
        raise NotFound("No such federated grant: Tiers serves this grant's data itself.")
    if not grant.is_active():
        raise InvalidInput("This grant is not active: include nobody.", grant_state=grant.state)
    refs = list(dict.fromkeys(subject_refs))
    if len(refs) > MAX_DECISION_SUBJECTS:
        raise InvalidInput(f"Ask about {MAX_DECISION_SUBJECTS} subjects at most per decision.")
    dataset = grant.dataset
    secret = vault.pseudonym_key(grant.organisation_id)
    allowed = eligibility.consenting_subjects(use_of(grant), refs) if dataset.is_personal else dict.fromkeys(refs)
    decision_id = uuid.uuid4()
    with transaction.atomic():
        audit.record(
            verb="grant.decided",
            actor=by.caller.client,
            subject=grant,
            details={"decision": str(decision_id), "asked": len(refs), "included": len(allowed)},
        )
    return {
        "decision": str(decision_id),
        "grant": str(grant.pk),
        "organisation": grant.organisation.slug,
        "purpose": grant.purpose,
        "fields": list(grant.fields),
        "grant_ends_at": grant.ends_at,
        "subjects": [
            {"subject_ref": ref, "include": True, "pseudonym": vault.pseudonym(secret, dataset.holder_id, ref)}
            if ref in allowed
            else {"subject_ref": ref, "include": False, "pseudonym": None}
            for ref in refs
        ],
    }


def receipt_record(*, by: ClientPrincipal, compact: str) -> Delivery:
    """Record a holder's signed access receipt as a delivery, with its audit entry.

    The receipt is a JWT signed by a key of the holder client's registered JWK
    Set, typ tiers-access-receipt+jwt, for Tiers' audience, fresh, with a jti
    used once. It names the grant, the number of records and the subjects
    included (the holder's references, each with its count).
    """
    client = by.caller.client
    # The scope first: a client that may not report hears so before anything is verified.
    org_policy.require(by, OrgAction.DECIDE, by.caller.organisation)
    if not client.jwks:
        raise InvalidInput("Receipts verify against the client's registered JWK Set; jwks_uri is not read yet.")
    claims = _verified_receipt(client.jwks, compact, client.client_id)
    grant = by_id(Grant.objects.select_related("dataset", "organisation", "agreement"), claims["grant"])
    if grant is None:
        raise NotFound("No such grant for this holder.")
    policy.require_decider(by, grant)
    if grant.dataset.mode != Dataset.Mode.FEDERATED:
        raise NotFound("No such federated grant: Tiers serves this grant's data itself.")
    subjects = claims["subjects"]
    refs = [str(subject["subject_ref"]) for subject in subjects]
    secret = vault.pseudonym_key(grant.organisation_id)
    dataset = grant.dataset
    allowed = eligibility.consenting_subjects(use_of(grant), refs) if dataset.is_personal else {}
    citizens = dict(
        grant.dataset.holder.identity_links.filter(subject_ref__in=refs, unlinked_at__isnull=True).values_list(
            "subject_ref", "citizen_id"
        )
    )
    included = [
        DeliverySubject(
            subject_ref=str(subject["subject_ref"]),
            pseudonym=vault.pseudonym(secret, dataset.holder_id, str(subject["subject_ref"])),
            citizen_id=citizens.get(str(subject["subject_ref"])),
            records=subject["records"],
        )
        for subject in subjects
    ]
    not_permitted = sorted(ref for ref in refs if dataset.is_personal and ref not in allowed)
    receipt_jti = f"{client.client_id}:{claims['jti']}"
    try:
        with transaction.atomic():
            return _record_receipt(grant, client, claims, receipt_jti, included, len(not_permitted))
    except IntegrityError:  # the same receipt, sent twice at once
        raise InvalidInput("This receipt was recorded already (its jti is used).") from None


def _record_receipt(
    grant: Grant,
    client: Any,
    claims: dict[str, Any],
    receipt_jti: str,
    included: list[DeliverySubject],
    not_permitted: int,
) -> Delivery:
    """Write the delivery, its subjects and its audit entry (in the caller's transaction)."""
    if Delivery.objects.filter(receipt_jti=receipt_jti).exists():
        raise InvalidInput("This receipt was recorded already (its jti is used).")
    delivery = Delivery(
        grant=grant,
        kind=Delivery.Kind.FEDERATED,
        at=timezone.now(),
        records=int(claims["records"]),
        subjects=len(included),
        subjects_digest=vault.subjects_digest(subject.pseudonym for subject in included),
        receipt_jti=receipt_jti,
    )
    entry = audit.record(
        verb="grant.delivered",
        actor=client,
        subject=grant,
        details={
            "delivery": str(delivery.pk),
            "records": delivery.records,
            "subjects": delivery.subjects,
            "subjects_sha256": delivery.subjects_digest,
            "purpose": grant.purpose,
            "not_permitted": not_permitted,
        },
    )
    delivery.audit_entry_id = entry.pk
    delivery.save(force_insert=True)
    outbox.emit("sharing.delivery_recorded", {"delivery": str(delivery.pk)})
    for subject in included:
        subject.delivery = delivery
    DeliverySubject.objects.bulk_create(included, batch_size=5000)
    transaction.on_commit(lambda: metrics.RECORDS_DELIVERED.labels(kind="federated").inc(delivery.records))
    return delivery


MAX_COUNT = 2**53  # what any JSON reader keeps exact, well inside a bigint


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _verified_receipt(client_jwks: dict[str, Any], compact: str, client_id: str) -> dict[str, Any]:
    try:
        header = jws.extract_compact(compact.encode()).headers()
        if header.get("typ") != RECEIPT_TYPE:
            raise InvalidInput(f"A receipt's typ is {RECEIPT_TYPE}.")
        keyset = KeySet.import_key_set(client_jwks)  # type: ignore[arg-type]
        token = jwt.decode(compact, keyset, algorithms=["ES256", "EdDSA", "PS256", "RS256"])
        jwt.JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": client_id},
            aud={"essential": True, "value": settings.TIERS_BASE_URL},
            iat={"essential": True},
            jti={"essential": True},
            grant={"essential": True},
            records={"essential": True},
            subjects={"essential": True, "allow_blank": True},
        ).validate(token.claims)
    except InvalidInput:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"The receipt does not verify against your client's keys: {exc}") from exc
    claims = token.claims
    if abs(time.time() - float(claims["iat"])) > RECEIPT_MAX_AGE_SECONDS:
        raise InvalidInput("The receipt is stale or from the future: sign it when you deliver.")
    if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 128:
        raise InvalidInput("jti is a string of 1 to 128 characters.")
    if not _is_count(claims["records"]):
        raise InvalidInput("records is the number of records delivered, a non-negative integer.")
    subjects = claims["subjects"]
    if not isinstance(subjects, list) or len(subjects) > 100_000:
        raise InvalidInput('subjects is a list of at most 100,000 {"subject_ref": ..., "records": n}.')
    seen: set[str] = set()
    for subject in subjects:
        ref = subject.get("subject_ref") if isinstance(subject, dict) else None
        if not isinstance(ref, str) or not 0 < len(ref) <= 128 or not _is_count(subject.get("records", 0)):
            raise InvalidInput('Each subject is {"subject_ref": "<1 to 128 characters>", "records": n >= 0}.')
        if ref in seen:
            raise InvalidInput(f"Subject {ref!r} is named twice in this receipt.")
        seen.add(ref)
        subject.setdefault("records", 0)
    return dict(claims)
