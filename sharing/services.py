"""Every state change of data sharing: one transaction each, with its audit entry and outbox events.

Each function takes `by`, the principal acting (a person or an organisation's
OAuth client), checks it against sharing.policy first, and names it in the
audit entry.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from broker import audit, outbox
from broker.audit import log
from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import Organisation
from broker.oauth import tokens
from broker.policy import OrgAction, Principal
from consent.models import ConsentModule
from sharing import eligibility, policy, vault
from sharing.models import AccessRequest, Agreement, Dataset, Grant, ProcessingResult, Record
from sharing.schemas import checked_schema
from sharing.vocabulary import CONDITION_DEFAULTS, GENERAL_INTEREST_PURPOSES

MIN_JUSTIFICATION = 40


# --- datasets ------------------------------------------------------------------------------------


def dataset_register(
    *,
    by: Principal,
    holder: Organisation,
    slug: str,
    title: str,
    mode: str,
    table_schema: dict[str, Any],
    subject_key_field: str = "",
    personal_fields: Sequence[str] = (),
    data_categories: Sequence[str] = (),
    description: str = "",
    keywords: Sequence[str] = (),
    api_base_url: str = "",
) -> Dataset:
    """Register a holder's dataset, with a data key when Tiers hosts it."""
    policy.require_org(by, OrgAction.MANAGE_DATASETS, holder)
    if not holder.holds_data:
        raise Forbidden("Only a data holder registers datasets.")
    checked_schema(table_schema, subject_key_field=subject_key_field, personal_fields=list(personal_fields))
    if subject_key_field and not data_categories:
        raise InvalidInput("A dataset about people names its data_categories (W3C DPV, e.g. dpv-pd:Location).")
    if mode == Dataset.Mode.FEDERATED and not api_base_url:
        raise InvalidInput("A federated dataset names the holder's api_base_url.")
    if mode == Dataset.Mode.HOSTED and api_base_url:
        raise InvalidInput("A hosted dataset has no api_base_url: Tiers serves it.")
    with transaction.atomic():
        if Dataset.objects.filter(holder=holder, slug=slug).exists():
            raise Conflict(f"You already have a dataset {slug!r}.")
        dataset = Dataset.objects.create(
            holder=holder,
            slug=slug,
            title=title,
            description=description,
            keywords=list(keywords),
            mode=mode,
            api_base_url=api_base_url.rstrip("/") if api_base_url else "",
            table_schema=table_schema,
            subject_key_field=subject_key_field,
            personal_fields=list(personal_fields),
            data_categories=list(data_categories),
        )
        if mode == Dataset.Mode.HOSTED:
            vault.data_key_create(dataset)
        audit.record(
            verb="dataset.registered",
            actor=policy.actor_of(by),
            subject=dataset,
            details={"holder": holder.slug, "slug": slug, "mode": mode, "personal": dataset.is_personal},
        )
    return dataset


def dataset_withdraw(*, by: Principal, dataset: Dataset, reason: str) -> Dataset:
    """Stop offering a dataset: no new requests; its grants end as each agreement says."""
    policy.require_dataset_admin(by, dataset)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update(of=("self",)).get(pk=dataset.pk)
        if dataset.state == Dataset.State.WITHDRAWN:
            return dataset
        dataset.state = Dataset.State.WITHDRAWN
        dataset.withdrawn_at = timezone.now()
        dataset.save(update_fields=["state", "withdrawn_at"])
        ending = Grant.objects.active().filter(dataset=dataset)
        ended = _end_grants(ending, by=by, reason=f"dataset withdrawn: {reason}", follow_agreement=True)
        pending = AccessRequest.objects.select_for_update(of=("self",)).filter(
            state=AccessRequest.State.PENDING, agreement__datasets=dataset
        )
        rejected = 0
        for access_request in pending:
            if any(item["dataset"] == str(dataset.pk) for item in access_request.items):
                _decide(access_request, approve=False, actor=policy.actor_of(by), reason=f"dataset withdrawn: {reason}")
                rejected += 1
        audit.record(
            verb="dataset.withdrawn",
            actor=policy.actor_of(by),
            subject=dataset,
            details={"reason": reason, "grants_ended": ended, "requests_rejected": rejected},
        )
    return dataset


def records_delete(*, by: Principal, dataset: Dataset, subject_refs: Sequence[str]) -> int:
    """Delete a hosted dataset's records about some subjects (a holder's rectification or erasure)."""
    policy.require_dataset_admin(by, dataset)
    if dataset.mode != Dataset.Mode.HOSTED:
        raise Conflict("Tiers holds no records of a federated dataset.")
    refs = sorted(set(subject_refs))
    with transaction.atomic():
        deleted, _ = Record.objects.filter(dataset=dataset, subject_ref__in=refs).delete()
        audit.record(
            verb="dataset.records_deleted",
            actor=policy.actor_of(by),
            subject=dataset,
            details={"subjects": len(refs), "records": deleted},
        )
    return deleted


def data_key_rotate(*, by: Principal, dataset: Dataset) -> int:
    """Start a new data key version; a worker re-encrypts the records, reads go on meanwhile."""
    policy.require_dataset_admin(by, dataset)
    if dataset.mode != Dataset.Mode.HOSTED:
        raise Conflict("A federated dataset has no data key.")
    with transaction.atomic():
        Dataset.objects.select_for_update(of=("self",)).get(pk=dataset.pk)
        key = vault.data_key_create(dataset)
        outbox.emit("sharing.data_key_rotated", {"dataset": str(dataset.pk), "version": key.version})
        audit.record(
            verb="dataset.key_rotated",
            actor=policy.actor_of(by),
            subject=dataset,
            details={"version": key.version},
        )
    return key.version


# --- agreements ----------------------------------------------------------------------------------


@dataclass
class AgreementTerms:
    title: str
    datasets: list[Dataset]
    purposes: list[str]
    recipient_categories: list[str]
    consent_modules: list[str]
    approval_mode: str
    valid_from: datetime.datetime
    valid_until: datetime.datetime
    conditions: dict[str, Any] = field(default_factory=dict)


def _checked_terms(holder: Organisation, terms: AgreementTerms) -> dict[str, Any]:
    problems = []
    if not terms.datasets:
        problems.append("An agreement covers at least one dataset.")
    foreign = [d.slug for d in terms.datasets if d.holder_id != holder.pk]
    if foreign:
        problems.append(f"Datasets not yours: {', '.join(foreign)}.")
    unknown = [p for p in terms.purposes if p not in GENERAL_INTEREST_PURPOSES]
    if not terms.purposes or unknown:
        problems.append(f"Purposes must be general-interest DPV terms: {', '.join(GENERAL_INTEREST_PURPOSES)}.")
    categories = set(Organisation.RecipientCategory.values)
    if not terms.recipient_categories or set(terms.recipient_categories) - categories:
        problems.append(f"Recipient categories are among: {', '.join(sorted(categories))}.")
    unknown_conditions = set(terms.conditions) - set(CONDITION_DEFAULTS)
    if unknown_conditions:
        problems.append(f"Unknown conditions: {', '.join(sorted(unknown_conditions))}.")
    if terms.valid_until <= terms.valid_from:
        problems.append("valid_until comes after valid_from.")
    if any(d.is_personal for d in terms.datasets):
        known = set(ConsentModule.objects.filter(holder=holder).values_list("slug", flat=True))
        if not terms.consent_modules:
            problems.append("Personal data needs the consent modules that cover it.")
        elif set(terms.consent_modules) - known:
            problems.append(f"Unknown consent modules: {', '.join(sorted(set(terms.consent_modules) - known))}.")
    if problems:
        raise InvalidInput(" ".join(problems), errors=[{"detail": p} for p in problems])
    return {
        "purposes": sorted(set(terms.purposes)),
        "recipient_categories": sorted(set(terms.recipient_categories)),
        "consent_modules": sorted(set(terms.consent_modules)),
        "conditions": {**CONDITION_DEFAULTS, **terms.conditions},
    }


def agreement_content(agreement: Agreement) -> dict[str, Any]:
    """What the parties sign: everything agreed, and the predecessor's hash."""
    return {
        "agreement": str(agreement.series),
        "version": agreement.version,
        "predecessor_hash": agreement.predecessor_hash or None,
        "holder": agreement.holder.slug,
        "title": agreement.title,
        "datasets": sorted(str(pk) for pk in agreement.datasets.values_list("pk", flat=True)),
        "terms": agreement.terms,
        "approval_mode": agreement.approval_mode,
        "valid_from": log.timestamp(agreement.valid_from),
        "valid_until": log.timestamp(agreement.valid_until),
    }


def _content_hash(agreement: Agreement) -> str:
    return hashlib.sha256(rfc8785.dumps(agreement_content(agreement))).hexdigest()


def agreement_propose(
    *, by: Principal, holder: Organisation, terms: AgreementTerms, predecessor: Agreement | None = None
) -> Agreement:
    """Draft an agreement, or the next version of one in force; the holder then signs it."""
    policy.require_org(by, OrgAction.SIGN_AGREEMENTS, holder)
    checked = _checked_terms(holder, terms)
    with transaction.atomic():
        if predecessor is not None:
            predecessor = Agreement.objects.select_for_update(of=("self",)).get(pk=predecessor.pk)
            if predecessor.holder_id != holder.pk or predecessor.state != Agreement.State.ACTIVE:
                raise Conflict("Only an agreement in force gets a new version.")
            if Agreement.objects.filter(predecessor=predecessor).exists():
                raise Conflict("This version already has a successor.")
        agreement = Agreement.objects.create(
            holder=holder,
            series=predecessor.series if predecessor else uuid.uuid4(),
            version=predecessor.version + 1 if predecessor else 1,
            predecessor=predecessor,
            predecessor_hash=predecessor.content_hash if predecessor else "",
            title=terms.title,
            terms=checked,
            approval_mode=terms.approval_mode,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            content_hash="",
        )
        agreement.datasets.set(terms.datasets)
        agreement.content_hash = _content_hash(agreement)
        agreement.save(update_fields=["content_hash"])
        audit.record(
            verb="agreement.proposed",
            actor=policy.actor_of(by),
            subject=agreement,
            details={"holder": holder.slug, "version": agreement.version, "sha256": agreement.content_hash},
        )
    return agreement


def agreement_sign(*, by: Principal, agreement: Agreement, content_hash: str) -> Agreement:
    """The holder signs exactly the version whose hash it read."""
    policy.require_agreement_party(by, agreement)
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update(of=("self",)).get(pk=agreement.pk)
        if agreement.state != Agreement.State.DRAFT:
            raise Conflict(f"This agreement is {agreement.state}, not a draft awaiting signature.")
        if content_hash != agreement.content_hash:
            raise Conflict("The agreement's content hash differs from the one you signed; read it again.")
        agreement.state = Agreement.State.SIGNED
        agreement.holder_signed_by = audit.actor_ref(policy.actor_of(by))
        agreement.holder_signed_at = timezone.now()
        agreement.save(update_fields=["state", "holder_signed_by", "holder_signed_at"])
        audit.record(
            verb="agreement.signed",
            actor=policy.actor_of(by),
            subject=agreement,
            details={"sha256": agreement.content_hash},
        )
    return agreement


def agreement_countersign(*, by: Principal, agreement: Agreement, content_hash: str) -> Agreement:
    """An operator countersigns: the version is in force, and its predecessor superseded."""
    policy.require_operator(by)
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update(of=("self",)).get(pk=agreement.pk)
        if agreement.state != Agreement.State.SIGNED:
            raise Conflict(f"This agreement is {agreement.state}; the holder signs it first.")
        if content_hash != agreement.content_hash:
            raise Conflict("The agreement's content hash differs from the one you countersigned.")
        if agreement.predecessor_id is not None:
            predecessor = Agreement.objects.select_for_update(of=("self",)).get(pk=agreement.predecessor_id)
            if predecessor.state != Agreement.State.ACTIVE:
                raise Conflict(f"The version this one replaces is {predecessor.state}: it cannot come into force.")
        now = timezone.now()
        agreement.state = Agreement.State.ACTIVE
        agreement.countersigned_by = audit.actor_ref(policy.actor_of(by))
        agreement.countersigned_at = now
        agreement.save(update_fields=["state", "countersigned_by", "countersigned_at"])
        if agreement.predecessor_id:
            Agreement.objects.filter(pk=agreement.predecessor_id, state=Agreement.State.ACTIVE).update(
                state=Agreement.State.SUPERSEDED, ended_at=now, end_reason=f"superseded by v{agreement.version}"
            )
        audit.record(
            verb="agreement.countersigned",
            actor=policy.actor_of(by),
            subject=agreement,
            details={"sha256": agreement.content_hash, "supersedes": str(agreement.predecessor_id or "") or None},
        )
    return agreement


def agreement_terminate(*, by: Principal, agreement: Agreement, reason: str) -> Agreement:
    """End an agreement: no new grants; active grants end or run to term, as its conditions say."""
    if not policy.is_operator(by):
        policy.require_agreement_party(by, agreement)
    if not reason.strip():
        raise InvalidInput("Say why the agreement ends.")
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update(of=("self",)).get(pk=agreement.pk)
        if agreement.state not in (Agreement.State.ACTIVE, Agreement.State.SIGNED, Agreement.State.DRAFT):
            raise Conflict(f"This agreement is {agreement.state} already.")
        agreement.state = Agreement.State.TERMINATED
        agreement.ended_at = timezone.now()
        agreement.end_reason = reason
        agreement.save(update_fields=["state", "ended_at", "end_reason"])
        series = Agreement.objects.filter(series=agreement.series)
        # Versions proposed after this one end with it: none can revive the agreement later.
        for successor in series.select_for_update(of=("self",)).filter(
            state__in=(Agreement.State.DRAFT, Agreement.State.SIGNED), version__gt=agreement.version
        ):
            successor.state = Agreement.State.TERMINATED
            successor.ended_at = agreement.ended_at
            successor.end_reason = f"v{agreement.version} terminated: {reason}"
            successor.save(update_fields=["state", "ended_at", "end_reason"])
            audit.record(
                verb="agreement.terminated",
                actor=policy.actor_of(by),
                subject=successor,
                details={"reason": successor.end_reason, "grants_ended": 0},
            )
        ended = _end_grants(
            Grant.objects.active().filter(agreement__in=series),
            by=by,
            reason=f"agreement terminated: {reason}",
            follow_agreement=True,
        )
        outbox.emit("sharing.agreement_terminated", {"agreement": str(agreement.pk), "grants_ended": ended})
        audit.record(
            verb="agreement.terminated",
            actor=policy.actor_of(by),
            subject=agreement,
            details={"reason": reason, "grants_ended": ended},
        )
    return agreement


# --- access requests -----------------------------------------------------------------------------


@dataclass
class RequestItem:
    dataset: Dataset
    fields: list[str]


@dataclass
class Violation:
    rule: str
    detail: str


class PolicyRefused(InvalidInput):
    """The request breaks named rules of the agreement; nothing was created."""

    slug = "access-request-refused"
    title = "The access request breaks the agreement's rules."


def _agreement_for(datasets: Sequence[Dataset], chosen: Agreement | None) -> Agreement | None:
    if chosen is not None:
        return chosen
    if not datasets:
        return None
    candidates = Agreement.objects.filter(datasets=datasets[0], state=Agreement.State.ACTIVE).order_by("-version")
    return next((a for a in candidates if a.in_force()), None)


def _use(agreement: Agreement, dataset: Dataset, purpose: str, recipient_category: str) -> eligibility.Use:
    return eligibility.Use(
        holder_id=dataset.holder_id,
        purpose=purpose,
        recipient_category=recipient_category,
        data_categories=tuple(dataset.data_categories),
        module_slugs=tuple(agreement.terms.get("consent_modules", [])),
    )


def request_violations(
    *,
    organisation: Organisation,
    agreement: Agreement | None,
    items: Sequence[RequestItem],
    purpose: str,
    justification: str,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
    retention_days: int,
) -> list[Violation]:
    """Every rule of the agreement the request breaks, by name (empty: it may be submitted)."""
    found: list[Violation] = []

    def broken(rule: str, detail: str) -> None:
        found.append(Violation(rule, detail))

    if not organisation.is_verified:
        broken("requester_verified", "Your organisation is not verified by Tiers.")
    if not organisation.recipient_category:
        broken("recipient_category_known", "Your organisation has no recipient category; ask an operator.")
    if not items:
        broken("datasets_named", "Name at least one dataset.")
    if agreement is None or not agreement.in_force():
        broken("agreement_in_force", "No agreement in force covers these datasets.")
        return found
    conditions = agreement.conditions
    covered = set(agreement.datasets.values_list("pk", flat=True))
    for item in items:
        dataset = item.dataset
        if dataset.pk not in covered:
            broken("dataset_in_agreement", f"Dataset {dataset.slug!r} is not under agreement {agreement.title!r}.")
        if dataset.state != Dataset.State.ACTIVE:
            broken("dataset_active", f"Dataset {dataset.slug!r} is withdrawn.")
        unknown = [name for name in item.fields if name not in dataset.payload_fields]
        if not item.fields or unknown:
            broken(
                "fields_in_schema",
                f"Fields of {dataset.slug!r} to choose from: {', '.join(dataset.payload_fields)}"
                + (f" (not: {', '.join(unknown)})." if unknown else "."),
            )
        if dataset.is_personal and organisation.recipient_category and purpose in agreement.purposes:
            use = _use(agreement, dataset, purpose, organisation.recipient_category)
            if not eligibility.covering_modules(use):
                broken(
                    "consent_module_covers_use",
                    f"No consent module of the agreement covers {purpose} for {organisation.recipient_category} "
                    f"on the data categories of {dataset.slug!r}.",
                )
    if purpose not in agreement.purposes:
        broken("purpose_allowed", f"The agreement allows these purposes only: {', '.join(agreement.purposes)}.")
    if organisation.recipient_category and organisation.recipient_category not in agreement.recipient_categories:
        broken(
            "recipient_category_allowed",
            f"The agreement allows these recipients only: {', '.join(agreement.recipient_categories)}.",
        )
    if len(justification.strip()) < MIN_JUSTIFICATION:
        broken("justification_given", f"Explain the general interest served in {MIN_JUSTIFICATION}+ characters.")
    if ends_at <= starts_at:
        broken("period_valid", "The period ends after it starts.")
    if starts_at < agreement.valid_from or ends_at > agreement.valid_until:
        broken("period_within_agreement", f"The agreement is valid until {agreement.valid_until:%Y-%m-%d}.")
    grant_days_max = int(str(conditions.get("grant_days_max", 365)))
    if ends_at - starts_at > datetime.timedelta(days=grant_days_max):
        broken("period_within_limit", f"A grant lasts {grant_days_max} days at most under this agreement.")
    retention_max = int(str(conditions.get("retention_days_max", 365)))
    if retention_days > retention_max:
        broken("retention_within_limit", f"Data may be kept {retention_max} days at most under this agreement.")
    return found


def request_coverage(agreement: Agreement, items: Sequence[RequestItem], purpose: str, recipient: str) -> int:
    """Linked subjects consenting right now to exactly this use (over the request's personal datasets)."""
    uses = [_use(agreement, item.dataset, purpose, recipient) for item in items if item.dataset.is_personal]
    return max((eligibility.coverage(use) for use in uses), default=0)


def access_request_submit(
    *,
    by: Principal,
    organisation: Organisation,
    items: Sequence[RequestItem],
    purpose: str,
    justification: str,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
    retention_days: int,
    agreement: Agreement | None = None,
) -> AccessRequest:
    """Check the request against the agreement at once; route it to its reviewer, or approve it."""
    policy.require_org(by, OrgAction.REQUEST_ACCESS, organisation)
    # Rules are checked against the datasets as they stand now, not as the caller last saw them.
    current = Dataset.objects.in_bulk([item.dataset.pk for item in items])
    items = [RequestItem(dataset=current[item.dataset.pk], fields=item.fields) for item in items]
    agreement = _agreement_for([item.dataset for item in items], agreement)
    violations = request_violations(
        organisation=organisation,
        agreement=agreement,
        items=items,
        purpose=purpose,
        justification=justification,
        starts_at=starts_at,
        ends_at=ends_at,
        retention_days=retention_days,
    )
    if violations:
        raise PolicyRefused(
            "The request breaks: " + ", ".join(v.rule for v in violations) + ".",
            violations=[{"rule": v.rule, "detail": v.detail} for v in violations],
        )
    assert agreement is not None  # no violation means an agreement in force
    with transaction.atomic():
        access_request = AccessRequest.objects.create(
            organisation=organisation,
            agreement=agreement,
            items=[{"dataset": str(item.dataset.pk), "fields": list(dict.fromkeys(item.fields))} for item in items],
            purpose=purpose,
            recipient_category=organisation.recipient_category,
            justification=justification,
            starts_at=starts_at,
            ends_at=ends_at,
            retention_days=retention_days,
            reviewer=agreement.approval_mode,
            coverage=request_coverage(agreement, items, purpose, organisation.recipient_category),
            submitted_by=audit.actor_ref(policy.actor_of(by)),
        )
        audit.record(
            verb="access_request.submitted",
            actor=policy.actor_of(by),
            subject=access_request,
            details={
                "organisation": organisation.slug,
                "holder": agreement.holder.slug,
                "purpose": purpose,
                "datasets": [item["dataset"] for item in access_request.items],
                "reviewer": access_request.reviewer,
            },
        )
        if agreement.approval_mode == Agreement.ApprovalMode.AUTOMATIC:
            _decide(access_request, approve=True, actor="system", reason="matches the agreement's policy")
    return access_request


def access_request_review(*, by: Principal, access_request: AccessRequest, approve: bool, reason: str) -> AccessRequest:
    """The agreement's reviewer approves (creating the grants) or rejects, with a reason."""
    policy.require_reviewer(by, access_request)
    if not reason.strip():
        raise InvalidInput("Give the reason for your decision.")
    with transaction.atomic():
        access_request = AccessRequest.objects.select_for_update(of=("self",)).get(pk=access_request.pk)
        if access_request.state != AccessRequest.State.PENDING:
            raise Conflict(f"This request is {access_request.state} already.")
        if approve:
            _check_still_approvable(access_request)
        _decide(access_request, approve=approve, actor=policy.actor_of(by), reason=reason)
    return access_request


def _check_still_approvable(access_request: AccessRequest) -> None:
    """What may have changed since submission: the agreement, the datasets, the clock."""
    if not access_request.agreement.in_force():
        raise Conflict("The agreement is no longer in force; this request can only be rejected.")
    if access_request.ends_at <= timezone.now():
        raise Conflict("The requested period is over; this request can only be rejected.")
    ids = [item["dataset"] for item in access_request.items]
    # Locked, so that a withdrawal waits for this approval or wins before it.
    datasets = Dataset.objects.select_for_update(of=("self",)).filter(pk__in=ids)
    if any(dataset.state != Dataset.State.ACTIVE for dataset in datasets) or len(datasets) != len(set(ids)):
        raise Conflict("A dataset of this request was withdrawn; it can only be rejected.")


def _decide(access_request: AccessRequest, *, approve: bool, actor: Any, reason: str) -> list[Grant]:
    now = timezone.now()
    access_request.state = AccessRequest.State.APPROVED if approve else AccessRequest.State.REJECTED
    access_request.decided_by = audit.actor_ref(actor)
    access_request.decided_at = now
    access_request.decision_reason = reason
    access_request.save(update_fields=["state", "decided_by", "decided_at", "decision_reason"])
    grants = []
    if approve:
        for item in access_request.items:
            grants.append(
                Grant.objects.create(
                    organisation=access_request.organisation,
                    dataset_id=item["dataset"],
                    access_request=access_request,
                    agreement=access_request.agreement,
                    purpose=access_request.purpose,
                    recipient_category=access_request.recipient_category,
                    fields=item["fields"],
                    retention_days=access_request.retention_days,
                    starts_at=max(access_request.starts_at, now),
                    ends_at=access_request.ends_at,
                )
            )
        for grant in grants:
            outbox.emit("sharing.grant_approved", {"grant": str(grant.pk)})
    audit.record(
        verb="access_request.approved" if approve else "access_request.rejected",
        actor=actor,
        subject=access_request,
        details={"reason": reason, "grants": [str(grant.pk) for grant in grants]},
    )
    return grants


def access_requests_close(*, by: Principal, organisation: Organisation, reason: str) -> int:
    """An operator rejects every pending request of an organisation (on its exclusion), each audited."""
    policy.require_operator(by)
    with transaction.atomic():
        pending = AccessRequest.objects.select_for_update(of=("self",)).filter(
            organisation=organisation, state=AccessRequest.State.PENDING
        )
        for access_request in pending:
            _decide(access_request, approve=False, actor=policy.actor_of(by), reason=reason)
        return len(pending)


# --- grants --------------------------------------------------------------------------------------


def grant_revoke(*, by: Principal, grant: Grant, reason: str) -> Grant:
    """End a grant at once: its tokens are refused from the next request."""
    policy.require_grant_revoker(by, grant)
    if not reason.strip():
        raise InvalidInput("Say why the grant is revoked.")
    with transaction.atomic():
        ended = _end_grants(Grant.objects.filter(pk=grant.pk, state=Grant.State.ACTIVE), by=by, reason=reason)
        if not ended:
            raise Conflict("This grant has ended already.")
    return Grant.objects.get(pk=grant.pk)


def _end_grants(grants: QuerySet[Grant], *, by: Principal, reason: str, follow_agreement: bool = False) -> int:
    """Revoke grants (in the caller's transaction), each with its audit entry and event."""
    now = timezone.now()
    ended = 0
    for grant in grants.select_for_update(of=("self",)).select_related("agreement", "organisation"):
        agreement = grant.agreement
        if follow_agreement and agreement and agreement.conditions.get("grants_on_termination") == "run_to_term":
            continue
        grant.state = Grant.State.REVOKED
        grant.revoked_at = now
        grant.revoked_by = audit.actor_ref(policy.actor_of(by))
        grant.revoke_reason = reason
        grant.save(update_fields=["state", "revoked_at", "revoked_by", "revoke_reason"])
        outbox.emit("sharing.grant_revoked", {"grant": str(grant.pk), "reason": reason})
        audit.record(
            verb="grant.revoked",
            actor=policy.actor_of(by),
            subject=grant,
            details={"organisation_id": grant.organisation_id, "reason": reason},
        )
        ended += 1
    if ended:
        tokens.invalidate_liveness()
    return ended


def results_file(
    *, by: Principal, grant: Grant, summary: str, data_deleted: bool, outputs: Sequence[str] = ()
) -> ProcessingResult:
    """The data user reports what the data served, once the grant has ended (it feeds the annual report)."""
    if policy.grants_visible_to(by).filter(pk=grant.pk).exists() and not policy.organisations_of(
        by, "access_requests"
    ).__contains__(grant.organisation_id):
        raise Forbidden("Only the data user that held the grant files its results.")
    policy.require_org(by, OrgAction.REQUEST_ACCESS, grant.organisation)
    if len(summary.strip()) < MIN_JUSTIFICATION:
        raise InvalidInput(f"Say what the data served, in {MIN_JUSTIFICATION} characters or more.")
    with transaction.atomic():
        grant = Grant.objects.select_for_update(of=("self",)).get(pk=grant.pk)
        if grant.is_active():
            raise Conflict("Results are filed once the grant has ended (expired or revoked).")
        if ProcessingResult.objects.filter(grant=grant).exists():
            raise Conflict("The results of this grant were filed already.")
        entry = audit.record(
            verb="grant.results_filed",
            actor=policy.actor_of(by),
            subject=grant,
            details={"data_deleted": data_deleted, "outputs": len(outputs)},
        )
        return ProcessingResult.objects.create(
            grant=grant,
            summary=summary.strip(),
            outputs=list(outputs),
            data_deleted=data_deleted,
            filed_by=audit.actor_ref(policy.actor_of(by)),
            audit_entry_id=entry.pk,
        )


def as_items(raw: Sequence[Mapping[str, Any]], datasets: Mapping[str, Dataset]) -> list[RequestItem]:
    return [RequestItem(dataset=datasets[str(entry["dataset"])], fields=list(entry["fields"])) for entry in raw]
