"""The DGA's Art. 20 reports, generated from the audit log: who could use data, and the annual activity report.

The log's entries (verbs, details and times) say what happened and when; the
rows they name (a grant's organisation, dataset, purpose and period) give the
names. Where a figure can only come from a table, the document says so in its
`sources`, and docs/reports.md lists each one. Years are UTC calendar years.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import rfc8785
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from broker import audit, keys
from broker.audit import log
from broker.audit.selectors import checkpoint_latest
from broker.dga.models import AnnualReport
from broker.dga.profile import operator_profile
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import AuditBody, AuditEntry, Checkpoint, Organisation, User
from sharing.models import Agreement, Dataset, DeliverySubject, Grant, ProcessingResult
from sharing.vocabulary import GENERAL_INTEREST_PURPOSES

FIRST_YEAR = 2000
JWS_TYPE = "tiers-annual-report+jws"
FEES = "none"
FEES_NOTE = "Tiers charges no fee to data users or data holders for access to data."
ENCRYPTION_AT_REST = {
    "algorithm": "AES-256-GCM",
    "records": "each record's payload under its dataset's data key, bound to the dataset and subject reference",
    "keys": "data keys and pseudonym secrets wrapped by the key-encryption key (AES-256-GCM)",
}
PSEUDONYMS = "HMAC-SHA-256 of holder and subject reference under a secret per reading organisation"


# --- years and the log ---------------------------------------------------------------------------


def year_bounds(year: int) -> tuple[datetime.datetime, datetime.datetime]:
    """The first moment of the UTC year and the first moment of the next."""
    return (
        datetime.datetime(year, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(year + 1, 1, 1, tzinfo=datetime.UTC),
    )


def check_year(year: int) -> None:
    """Refuse a year before FIRST_YEAR or after the current one."""
    current = timezone.now().year
    if not FIRST_YEAR <= year <= current:
        detail = f"year must be between {FIRST_YEAR} and {current}."
        raise InvalidInput(detail, errors=[{"field": "year", "detail": detail}])


def stamp(moment: datetime.datetime | None) -> str | None:
    """A moment as published: UTC, to the second."""
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One audit entry, read back from its body."""

    entry_id: int
    leaf_index: int | None
    verb: str
    subject: str
    time: datetime.datetime
    details: dict[str, Any]

    @property
    def subject_id(self) -> str:
        return self.subject.partition(":")[2]


def events(
    verbs: Iterable[str],
    *,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    subjects: Iterable[str] | None = None,
) -> Iterator[Event]:
    """The entries of these verbs (and subjects) in [since, until), oldest first; erased events are gone."""
    bodies = AuditBody.objects.filter(verb__in=list(verbs))
    if since is not None:
        bodies = bodies.filter(entry__created_at__gte=since)
    if until is not None:
        bodies = bodies.filter(entry__created_at__lt=until)
    if subjects is not None:
        bodies = bodies.filter(subject__in=list(subjects))
    rows = bodies.order_by("entry_id").values_list(
        "entry_id", "entry__leaf_index", "entry__created_at", "verb", "subject", "canonical"
    )
    for entry_id, leaf_index, created_at, verb, subject, canonical in rows.iterator(chunk_size=2000):
        yield Event(entry_id, leaf_index, verb, subject, created_at, json.loads(bytes(canonical))["details"])


def leaf_index_of(entry_id: int | None) -> int | None:
    """The public index of an entry (None until the sequencer gives it one)."""
    if entry_id is None:
        return None
    return AuditEntry.objects.filter(pk=entry_id).values_list("leaf_index", flat=True).first()


# --- Art. 20(1): who was given the possibility to process data ------------------------------------


@dataclass(frozen=True)
class GrantSpan:
    """A grant and the entries that opened and ended it."""

    grant: Grant
    approval: Event | None
    revocation: Event | None

    @property
    def revoked_at(self) -> datetime.datetime | None:
        return self.revocation.time if self.revocation else self.grant.revoked_at

    @property
    def ends_at(self) -> datetime.datetime:
        """When the possibility to process ended (or ends): the revocation, or the grant's end."""
        revoked = self.revoked_at
        return min(self.grant.ends_at, revoked) if revoked else self.grant.ends_at

    def touches(self, start: datetime.datetime, end: datetime.datetime) -> bool:
        """Active at some moment of [start, end)."""
        begins = self.grant.starts_at
        return begins < end and self.ends_at > start and self.ends_at > begins


def grant_spans(year: int) -> list[GrantSpan]:
    """Every grant active at some moment of the year, with its approval and revocation entries."""
    start, end = year_bounds(year)
    # A grant's period lives in its row (the approval entry names the grant, not its dates), so the
    # rows narrow the candidates and the log tells when each was opened and ended.
    grants = list(
        Grant.objects.filter(starts_at__lt=end, ends_at__gt=start).select_related(
            "organisation", "dataset__holder", "access_request"
        )
    )
    requests = {f"accessrequest:{g.access_request_id}" for g in grants if g.access_request_id}
    approvals: dict[str, Event] = {}
    for event in events(["access_request.approved"], subjects=requests):
        for grant_id in event.details.get("grants", []):
            approvals[str(grant_id)] = event
    revocations = {e.subject_id: e for e in events(["grant.revoked"], subjects={f"grant:{g.pk}" for g in grants})}
    spans = [GrantSpan(g, approvals.get(str(g.pk)), revocations.get(str(g.pk))) for g in grants]
    chosen = [span for span in spans if span.touches(start, end)]
    return sorted(chosen, key=lambda s: (s.grant.organisation.slug, s.grant.starts_at, str(s.grant.pk)))


def organisation_ref(organisation: Organisation) -> dict[str, Any]:
    return {
        "slug": organisation.slug,
        "legal_name": organisation.name,
        "identifier": f"{organisation.identifier_scheme}:{organisation.legal_identifier}",
        "country": organisation.country,
    }


def record_row(span: GrantSpan) -> dict[str, Any]:
    """One Art. 20(1) record: who, which data, when, for what, at what fee."""
    grant, dataset = span.grant, span.grant.dataset
    seconds = (span.ends_at - grant.starts_at).total_seconds()
    return {
        "grant": str(grant.pk),
        "organisation": {**organisation_ref(grant.organisation), "contact": grant.organisation.contact_email},
        "recipient_category": grant.recipient_category or grant.organisation.recipient_category,
        "dataset": {
            "id": str(dataset.pk),
            "slug": dataset.slug,
            "title": dataset.title,
            "holder": organisation_ref(dataset.holder),
        },
        "purpose": grant.purpose,
        "purpose_label": GENERAL_INTEREST_PURPOSES.get(grant.purpose, ""),
        "declared_purpose": grant.access_request.justification if grant.access_request else "",
        "starts_at": stamp(grant.starts_at),
        "ends_at": stamp(grant.ends_at),
        "revoked_at": stamp(span.revoked_at),
        "duration_days": max(0, math.ceil(seconds / 86400)),
        "fields": list(grant.fields),
        "fees": FEES,
        "fees_note": FEES_NOTE,
        # "audit-log": the grant was opened by an access_request.approved entry naming it;
        # "grants-table": a grant row the log does not name (made outside the request flow).
        "source": "audit-log" if span.approval else "grants-table",
        "approval_leaf_index": span.approval.leaf_index if span.approval else None,
        "revocation_leaf_index": span.revocation.leaf_index if span.revocation else None,
    }


def records(year: int) -> dict[str, Any]:
    """The Art. 20(1) records of a year."""
    check_year(year)
    rows = [record_row(span) for span in grant_spans(year)]
    return {
        "regulation": "Regulation (EU) 2022/868, Art. 20(1)",
        "year": year,
        "generated_at": stamp(timezone.now()),
        "fees": FEES,
        "fees_note": FEES_NOTE,
        "count": len(rows),
        "records": rows,
    }


CSV_COLUMNS = [
    ("grant", lambda r: r["grant"]),
    ("organisation_slug", lambda r: r["organisation"]["slug"]),
    ("organisation_legal_name", lambda r: r["organisation"]["legal_name"]),
    ("organisation_identifier", lambda r: r["organisation"]["identifier"]),
    ("organisation_country", lambda r: r["organisation"]["country"]),
    ("organisation_contact", lambda r: r["organisation"]["contact"]),
    ("recipient_category", lambda r: r["recipient_category"]),
    ("dataset_holder_slug", lambda r: r["dataset"]["holder"]["slug"]),
    ("dataset_holder_legal_name", lambda r: r["dataset"]["holder"]["legal_name"]),
    ("dataset_holder_identifier", lambda r: r["dataset"]["holder"]["identifier"]),
    ("dataset_slug", lambda r: r["dataset"]["slug"]),
    ("dataset_title", lambda r: r["dataset"]["title"]),
    ("purpose", lambda r: r["purpose"]),
    ("purpose_label", lambda r: r["purpose_label"]),
    ("declared_purpose", lambda r: r["declared_purpose"]),
    ("starts_at", lambda r: r["starts_at"]),
    ("ends_at", lambda r: r["ends_at"]),
    ("revoked_at", lambda r: r["revoked_at"] or ""),
    ("duration_days", lambda r: r["duration_days"]),
    ("fields", lambda r: " ".join(r["fields"])),
    ("fees", lambda r: r["fees"]),
    ("fees_note", lambda r: r["fees_note"]),
    ("source", lambda r: r["source"]),
    ("approval_leaf_index", lambda r: "" if r["approval_leaf_index"] is None else r["approval_leaf_index"]),
    ("revocation_leaf_index", lambda r: "" if r["revocation_leaf_index"] is None else r["revocation_leaf_index"]),
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: Any) -> Any:
    """OWASP CSV injection: a text cell never starts a formula in a spreadsheet."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def records_csv(report: dict[str, Any]) -> str:
    """The records as CSV: a header row, then one row per record."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in CSV_COLUMNS])
    for row in report["records"]:
        writer.writerow([defuse(cell(row)) for _, cell in CSV_COLUMNS])
    return out.getvalue()


# --- Art. 20(2): the annual activity report --------------------------------------------------------


def operator_section() -> dict[str, Any] | None:
    """The operator's registration as recorded by its operators (OperatorProfile), or None."""
    profile = operator_profile()
    if profile is None:
        return None
    return {
        "legal_name": profile.legal_name,
        "role": profile.role,
        "registration_number": profile.registration_number,
        "competent_authority": profile.competent_authority,
        "country": profile.country,
        "address": profile.address,
        "contact_email": profile.contact_email,
        "website": profile.website,
        "union_register_url": profile.union_register_url,
        "status": profile.status,
        "registered_at": profile.registered_at.isoformat() if profile.registered_at else None,
    }


def _sum(found: Iterable[Event], key: str) -> int:
    return sum(int(event.details.get(key) or 0) for event in found)


def activities(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Counts of the year's entries by verb, and the sums their details carry."""
    counts = Counter(
        dict(
            AuditBody.objects.filter(entry__created_at__gte=start, entry__created_at__lt=end)
            .values("verb")
            .annotate(n=Count("entry_id"))
            .values_list("verb", "n")
        )
    )
    detailed = ["access_request.approved", "grant.read", "grant.decided", "grant.delivered"]
    found: dict[str, list[Event]] = defaultdict(list)
    for event in events(detailed, since=start, until=end):
        found[event.verb].append(event)
    entries = AuditEntry.objects.filter(created_at__gte=start, created_at__lt=end)
    return {
        "organisations": _family(counts, "organisation", ["registered", "verified", "excluded"]),
        "datasets": _family(counts, "dataset", ["registered", "withdrawn"]),
        "agreements": _family(counts, "agreement", ["proposed", "signed", "countersigned", "terminated"]),
        "access_requests": _family(counts, "access_request", ["submitted", "approved", "rejected"]),
        "grants": {
            "granted": sum(len(e.details.get("grants", [])) for e in found["access_request.approved"]),
            "revoked": counts["grant.revoked"],
            "results_filed": counts["grant.results_filed"],
        },
        "deliveries": {
            "hosted_reads": counts["grant.read"],
            "federated_decisions": counts["grant.decided"],
            "federated_deliveries": counts["grant.delivered"],
            "records_delivered": _sum(found["grant.read"], "records") + _sum(found["grant.delivered"], "records"),
        },
        "consents": _family(counts, "consent", ["given", "withdrawn"], every=True),
        "log": {
            "entries": entries.count(),
            # Erasure at a citizen's request deletes an event's body; its leaf stays in the tree.
            "erased_events": entries.filter(body__isnull=True).count(),
        },
    }


def _family(counts: Counter[str], family: str, verbs: list[str], *, every: bool = False) -> dict[str, int]:
    """The counts of `family.<verb>`; with `every`, also the family's other verbs seen in the year."""
    found = {verb: counts[f"{family}.{verb}"] for verb in verbs}
    if every:
        prefix = f"{family}."
        found.update({v.removeprefix(prefix): n for v, n in counts.items() if v.startswith(prefix)})
    return dict(sorted(found.items()))


def agreements_in_force(start: datetime.datetime, end: datetime.datetime) -> list[Agreement]:
    """Agreement versions in force at some moment of [start, end): countersigned, not yet ended, valid."""
    countersigned = {e.subject_id: e for e in events(["agreement.countersigned"], until=end)}
    ended: dict[str, datetime.datetime] = {}
    for event in countersigned.values():
        predecessor = event.details.get("supersedes")
        if predecessor:
            ended[str(predecessor)] = event.time
    for event in events(["agreement.terminated"], until=end):
        ended[event.subject_id] = min(event.time, ended.get(event.subject_id, event.time))
    found = Agreement.objects.filter(pk__in=list(countersigned)).select_related("holder").prefetch_related("datasets")
    kept = []
    for agreement in found:
        begins = max(countersigned[str(agreement.pk)].time, agreement.valid_from)
        stops = min(ended.get(str(agreement.pk), agreement.valid_until), agreement.valid_until)
        if begins < end and stops > start and stops > begins:
            kept.append(agreement)
    return sorted(kept, key=lambda a: (a.holder.slug, a.title, a.version))


def general_interest(agreements: list[Agreement], spans: list[GrantSpan]) -> dict[str, Any]:
    """How general-interest purposes were promoted: the purposes agreed to, and those granted."""
    agreed = Counter(purpose for agreement in agreements for purpose in agreement.purposes)
    granted = Counter(span.grant.purpose for span in spans)
    return {
        "agreements_in_force": [
            {
                "id": str(agreement.pk),
                "holder": agreement.holder.slug,
                "title": agreement.title,
                "version": agreement.version,
                "purposes": agreement.purposes,
                "content_hash": agreement.content_hash,
            }
            for agreement in agreements
        ],
        "purposes": [
            {
                "purpose": purpose,
                "label": GENERAL_INTEREST_PURPOSES.get(purpose, ""),
                "agreements": agreed[purpose],
                "grants": granted[purpose],
            }
            for purpose in sorted(set(agreed) | set(granted))
        ],
    }


def data_users(spans: list[GrantSpan]) -> list[dict[str, Any]]:
    """Each organisation allowed to use data in the year, with a summary of its purposes."""
    by_organisation: dict[str, list[GrantSpan]] = defaultdict(list)
    for span in spans:
        by_organisation[span.grant.organisation.slug].append(span)
    summary = []
    for slug in sorted(by_organisation):
        mine = by_organisation[slug]
        organisation = mine[0].grant.organisation
        purposes = sorted({span.grant.purpose for span in mine})
        summary.append(
            {
                **organisation_ref(organisation),
                "recipient_category": organisation.recipient_category,
                "purposes": [{"purpose": p, "label": GENERAL_INTEREST_PURPOSES.get(p, "")} for p in purposes],
                "grants": len(mine),
                "datasets": sorted({f"{s.grant.dataset.holder.slug}/{s.grant.dataset.slug}" for s in mine}),
            }
        )
    return summary


def transparency_log(until: datetime.datetime) -> dict[str, Any]:
    """The newest checkpoint signed before `until` (the very newest for a year not over)."""
    checkpoint = Checkpoint.objects.filter(timestamp__lt=until).order_by("-tree_size").first()
    if checkpoint is None and until > timezone.now():
        checkpoint = checkpoint_latest()
    if checkpoint is None:
        return {"tree_size": 0, "checkpoint": None}
    return {
        "tree_size": checkpoint.tree_size,
        "checkpoint": {
            "tree_size": checkpoint.tree_size,
            "root_hash": log.b64(bytes(checkpoint.root_hash)),
            "timestamp": log.timestamp(checkpoint.timestamp),
            "jws": checkpoint.jws,
        },
    }


def privacy(start: datetime.datetime, end: datetime.datetime, spans: list[GrantSpan]) -> dict[str, Any]:
    """The technical means used to preserve privacy, and what they did in the year."""
    found: dict[str, list[Event]] = defaultdict(list)
    for event in events(["grant.read", "grant.decided"], since=start, until=end):
        found[event.verb].append(event)
    hosted_included = _sum(found["grant.read"], "subjects")
    decisions_asked = _sum(found["grant.decided"], "asked")
    withheld: list[dict[str, Any]] = [
        {
            "grant": str(span.grant.pk),
            "organisation": span.grant.organisation.slug,
            "dataset": f"{span.grant.dataset.holder.slug}/{span.grant.dataset.slug}",
            "granted": sorted(span.grant.fields),
            "withheld": sorted(set(span.grant.dataset.payload_fields) - set(span.grant.fields)),
            "pseudonymised": span.grant.dataset.subject_key_field or None,
        }
        for span in spans
    ]
    pseudonyms = (
        DeliverySubject.objects.filter(delivery__at__gte=start, delivery__at__lt=end)
        .values("pseudonym")
        .distinct()
        .count()
    )
    return {
        "pseudonyms": {"method": PSEUDONYMS, "issued": pseudonyms},
        "consent_checks": {
            "total": hosted_included + decisions_asked,
            "hosted_reads_subjects_included": hosted_included,
            "decisions_subjects_asked": decisions_asked,
            "decisions_subjects_included": _sum(found["grant.decided"], "included"),
        },
        "fields_withheld": {"total": sum(len(item["withheld"]) for item in withheld), "grants": withheld},
        "encryption_at_rest": {
            **ENCRYPTION_AT_REST,
            "hosted_datasets": Dataset.objects.filter(mode=Dataset.Mode.HOSTED, created_at__lt=end).count(),
        },
        "transparency_log": transparency_log(end),
    }


def processing_results(start: datetime.datetime, end: datetime.datetime) -> list[dict[str, Any]]:
    """What data users reported of the grants that ended in the year (ProcessingResult rows)."""
    ended_in_year = Q(grant__revoked_at__gte=start, grant__revoked_at__lt=end) | Q(
        grant__revoked_at__isnull=True, grant__ends_at__gte=start, grant__ends_at__lt=end
    )
    found = ProcessingResult.objects.filter(ended_in_year).select_related("grant__organisation", "grant__dataset")
    leaves = dict(AuditEntry.objects.filter(pk__in=[r.audit_entry_id for r in found]).values_list("pk", "leaf_index"))
    return [
        {
            "grant": str(result.grant_id),
            "organisation": result.grant.organisation.slug,
            "dataset": result.grant.dataset.slug,
            "purpose": result.grant.purpose,
            "summary": result.summary,
            "outputs": list(result.outputs),
            "data_deleted": result.data_deleted,
            "filed_at": stamp(result.filed_at),
            "filed_leaf_index": leaves.get(result.audit_entry_id),
        }
        for result in sorted(found, key=lambda r: (r.filed_at, str(r.grant_id)))
    ]


SOURCES = {
    "activities": "audit log: entries of the year counted by verb; sums of their details",
    "general_interest.agreements_in_force": "audit log (countersigned, superseded, terminated) with the agreement rows"
    " for validity and purposes",
    "general_interest.purposes": "agreement and grant rows named by the log",
    "data_users": "grants table (period) with the audit log (approval and revocation entries)",
    "privacy.pseudonyms.issued": "deliveries table (DeliverySubject): the log keeps only a digest of the pseudonyms",
    "privacy.consent_checks": "audit log: grant.read subjects and grant.decided asked/included",
    "privacy.fields_withheld": "grant and dataset rows: schema fields not granted",
    "privacy.transparency_log": "checkpoints table: the newest signed checkpoint before the year's end",
    "results": "processing results table (summaries are not in the log; grant.results_filed entries are)",
    "operator": "operator profile table",
}


def annual_document(year: int) -> dict[str, Any]:
    """The Art. 20(2) activity report of a year, as a JSON document."""
    start, end = year_bounds(year)
    spans = grant_spans(year)
    return {
        "type": "tiers-annual-activity-report",
        "regulation": "Regulation (EU) 2022/868, Art. 20(2)",
        "year": year,
        "period": {"from": stamp(start), "until": stamp(end)},
        "generated_at": stamp(timezone.now()),
        "operator": operator_section(),
        "activities": activities(start, end),
        "general_interest": general_interest(agreements_in_force(start, end), spans),
        "data_users": data_users(spans),
        "privacy": privacy(start, end, spans),
        "results": processing_results(start, end),
        "fees": {"charged": FEES, "note": FEES_NOTE},
        "sources": SOURCES,
    }


def canonical(document: dict[str, Any]) -> bytes:
    """The exact bytes the report's hash and signature cover (RFC 8785)."""
    return rfc8785.dumps(document)


def seal(document: dict[str, Any]) -> tuple[str, str]:
    """The compact JWS over the document's canonical bytes, and their SHA-256 in hex."""
    payload = canonical(document)
    return keys.sign_jws(payload, typ=JWS_TYPE), hashlib.sha256(payload).hexdigest()


def annual_report(year: int) -> dict[str, Any]:
    """A published year as stored; any other past or current year generated and signed now."""
    published = AnnualReport.objects.filter(year=year).first()
    if published is not None:
        return {
            "document": published.document,
            "jws": published.jws,
            "sha256": published.sha256,
            "published": True,
            "published_at": stamp(published.published_at),
            "published_leaf_index": leaf_index_of(published.audit_entry_id),
        }
    if not FIRST_YEAR <= year <= timezone.now().year:
        raise NotFound(f"There is no report for {year}.")
    document = annual_document(year)
    jws, sha256 = seal(document)
    return {
        "document": document,
        "jws": jws,
        "sha256": sha256,
        "published": False,
        "published_at": None,
        "published_leaf_index": None,
    }


def annual_report_publish(*, actor: User, year: int, allow_current: bool = False) -> AnnualReport:
    """Sign a year's report and keep it for good, with its `report.published` entry; operators only, once."""
    if not actor.is_operator:
        raise Forbidden("Only an operator publishes the annual report.")
    current = timezone.now().year
    if not FIRST_YEAR <= year <= current or (year == current and not allow_current):
        raise InvalidInput(f"Only a year that is over can be published; {year} is not.")
    if AnnualReport.objects.filter(year=year).exists():
        raise Conflict(f"The report for {year} is published already.")
    document = annual_document(year)
    jws, sha256 = seal(document)  # signed before the transaction: no heavy crypto while it is open
    try:
        with transaction.atomic():
            entry = audit.record(
                verb="report.published",
                actor=actor,
                subject=f"annual_report:{year}",
                details={"year": year, "sha256": sha256, "kind": "annual-activity-report"},
            )
            return AnnualReport.objects.create(
                year=year, document=document, jws=jws, sha256=sha256, audit_entry_id=entry.pk
            )
    except IntegrityError as error:  # another operator published the same year a moment before
        raise Conflict(f"The report for {year} is published already.") from error
