"""Sharing fixtures: a mobility holder with its consent module, a hosted dataset under an agreement."""

from __future__ import annotations

import datetime
import io
from typing import Any

import pytest
from django.utils import timezone

from broker.models import Membership, Organisation, User
from consent import services as consent
from consent.models import ConsentModule, ConsentRecord
from sharing import ingest, services
from sharing.models import Agreement, Dataset, Grant, Upload
from tests.factories import MembershipFactory, OrganisationFactory

RESEARCH = "dpv:NonCommercialResearch"
PUBLIC_BENEFIT = "dpv:PublicBenefit"

TRIPS_SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "traveller", "type": "string", "constraints": {"required": True}},
        {"name": "day", "type": "date", "constraints": {"required": True}},
        {"name": "origin", "type": "string"},
        {"name": "destination", "type": "string"},
        {"name": "km", "type": "number", "constraints": {"minimum": 0}},
    ]
}
MODULE: dict[str, Any] = {
    "title_en": "Your trips, for better public transport",
    "title_fr": "Vos trajets, pour de meilleurs transports publics",
    "notice_en": "We share your trips under a pseudonym.",
    "notice_fr": "Nous partageons vos trajets sous un pseudonyme.",
    "data_categories": ["dpv-pd:Location", "dpv-pd:TravelHistory"],
    "purposes": [RESEARCH, PUBLIC_BENEFIT],
    "recipient_categories": ["public-authority", "research-body"],
    "duration_days": 365,
    "jurisdiction": "EU",
}
JUSTIFICATION = "Plan the new tram line from where people actually travel, for every resident."


@pytest.fixture
def lab(db: None) -> Organisation:
    """A second data user: a research laboratory."""
    return OrganisationFactory(
        slug="labo",
        name="Laboratoire Mobilités",
        kind=Organisation.Kind.USER,
        recipient_category=Organisation.RecipientCategory.RESEARCH_BODY,
    )


@pytest.fixture
def lab_admin(lab: Organisation) -> User:
    return MembershipFactory(user__username="lea", organisation=lab, role=Membership.Role.ADMIN).user


@pytest.fixture
def module(holder: Organisation, holder_admin: User) -> ConsentModule:
    return consent.module_publish(actor=holder_admin, holder=holder, slug="mobility", content=dict(MODULE))


@pytest.fixture
def trips(holder: Organisation, holder_admin: User) -> Dataset:
    return services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="trips",
        title="Trips",
        mode=Dataset.Mode.HOSTED,
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )


def terms(datasets: list[Dataset], **changes: Any) -> services.AgreementTerms:
    now = timezone.now()
    values: dict[str, Any] = {
        "title": "Mobility for the general interest",
        "datasets": datasets,
        "purposes": [RESEARCH, PUBLIC_BENEFIT],
        "recipient_categories": ["public-authority", "research-body"],
        "consent_modules": ["mobility"],
        "approval_mode": Agreement.ApprovalMode.AUTOMATIC,
        "valid_from": now - datetime.timedelta(days=1),
        "valid_until": now + datetime.timedelta(days=730),
        "conditions": {},
    }
    values.update(changes)
    return services.AgreementTerms(**values)


def agreement_in_force(holder_admin: User, operator: User, datasets: list[Dataset], **changes: Any) -> Agreement:
    holder = datasets[0].holder
    draft = services.agreement_propose(by=holder_admin, holder=holder, terms=terms(datasets, **changes))
    signed = services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    return services.agreement_countersign(by=operator, agreement=signed, content_hash=signed.content_hash)


@pytest.fixture
def agreement(holder_admin: User, operator: User, trips: Dataset, module: ConsentModule) -> Agreement:
    return agreement_in_force(holder_admin, operator, [trips])


def upload(by: Any, dataset: Dataset, body: bytes, *, content_type: str = "text/csv", **options: Any) -> Upload:
    """Receive an upload and ingest it at once (what the outbox handler does in a worker)."""
    received = ingest.upload_receive(
        by=by,
        dataset=dataset,
        body=io.BytesIO(body),
        content_type=content_type,
        on_error=options.get("on_error", Upload.OnError.ALL_OR_NOTHING),
        replace=options.get("replace", False),
    )
    return ingest.ingest(str(received.pk))


def trips_csv(rows: list[tuple[str, str, str, str, float]]) -> bytes:
    lines = ["traveller,day,origin,destination,km"] + [",".join(map(str, row)) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def link(citizen: User, holder: Organisation, subject_ref: str) -> None:
    _, code = consent.link_code_issue(actor="system", holder=holder, subject_ref=subject_ref)
    consent.link_redeem(citizen=citizen, code=code)


def consent_to(citizen: User, module: ConsentModule, *purposes: str) -> list[ConsentRecord]:
    return consent.consent_give(citizen=citizen, module=module, purposes=list(purposes))


def grant_for(
    by: User, organisation: Organisation, dataset: Dataset, *, purpose: str = RESEARCH, fields: list[str] | None = None
) -> Grant:
    """Submit a request under an automatic agreement: approved at once, one grant."""
    now = timezone.now()
    request = services.access_request_submit(
        by=by,
        organisation=organisation,
        items=[services.RequestItem(dataset=dataset, fields=fields or ["day", "origin", "destination"])],
        purpose=purpose,
        justification=JUSTIFICATION,
        starts_at=now,
        ends_at=now + datetime.timedelta(days=90),
        retention_days=90,
    )
    return request.grants.get()
