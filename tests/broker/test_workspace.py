"""The operators' workspace: only operators reach it, and its queues work end to end."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from broker import incidents
from broker.models import AuditBody, Incident, Organisation, User
from broker.workspace.decorators import SECOND_FACTOR_SESSION_KEY
from consent import services as consent
from consent.models import ConsentModule
from sharing import services as sharing
from sharing.models import AccessRequest, Agreement, Dataset
from tests.factories import OrganisationFactory
from tests.sharing.conftest import JUSTIFICATION, MODULE, RESEARCH, TRIPS_SCHEMA, agreement_in_force, link, terms

pytestmark = pytest.mark.django_db


def events(verb: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb=verb).order_by("entry_id")]


def browser(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def publish_module(holder: Organisation, admin: User) -> ConsentModule:
    """The holder's mobility consent module (the sharing tests' one)."""
    return consent.module_publish(actor=admin, holder=holder, slug="mobility", content=dict(MODULE))


def register_trips(holder: Organisation, admin: User) -> Dataset:
    """The holder's hosted, personal trips dataset (the sharing tests' one)."""
    return sharing.dataset_register(
        by=admin,
        holder=holder,
        slug="trips",
        title="Trips",
        mode=Dataset.Mode.HOSTED,
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )


@pytest.fixture
def module(holder: Organisation, holder_admin: User) -> ConsentModule:
    return publish_module(holder, holder_admin)


@pytest.fixture
def trips(holder: Organisation, holder_admin: User) -> Dataset:
    return register_trips(holder, holder_admin)


@dataclass
class World:
    pending: Organisation
    signed: Agreement
    ethics_request: AccessRequest
    incident: Incident


@pytest.fixture
def world(
    holder_admin: User, user_admin: User, data_user: Organisation, operator: User, trips: Dataset, module: Any
) -> World:
    """One item in every queue: an application, a signed agreement, an ethics request, an open incident."""
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.ETHICS)
    now = timezone.now()
    ethics_request = sharing.access_request_submit(
        by=user_admin,
        organisation=data_user,
        items=[sharing.RequestItem(dataset=trips, fields=["day", "origin"])],
        purpose=RESEARCH,
        justification=JUSTIFICATION,
        starts_at=now,
        ends_at=now + datetime.timedelta(days=30),
        retention_days=30,
    )
    draft = sharing.agreement_propose(
        by=holder_admin, holder=trips.holder, terms=terms([trips], title="Second agreement")
    )
    signed = sharing.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    incident = incidents.incident_record(
        actor=operator,
        summary="A token leaked",
        description="A data user's token was published in a public repository.",
        occurred_at=now - datetime.timedelta(hours=2),
        detected_at=now - datetime.timedelta(hours=1),
        personal_data=False,
    )
    pending = OrganisationFactory(slug="applicant", verification_state="pending", verified_at=None)
    return World(pending=pending, signed=signed, ethics_request=ethics_request, incident=incident)


def pages(world: World) -> list[tuple[str, str, dict[str, str]]]:
    """Every workspace URL, with the method and form that reach it."""
    incident, request_id = world.incident.pk, world.ethics_request.pk
    return [
        ("get", "/operator/", {}),
        ("get", "/operator/second-factor/", {}),
        ("get", "/operator/organisations/", {}),
        ("post", f"/operator/organisations/{world.pending.slug}/verify", {}),
        ("post", f"/operator/organisations/{world.pending.slug}/reject", {"reason": "not a real body"}),
        ("get", f"/operator/organisations/{world.pending.slug}/exclude", {}),
        ("post", f"/operator/organisations/{world.pending.slug}/exclude", {"reason": "abuse"}),
        ("get", "/operator/agreements/", {}),
        ("post", f"/operator/agreements/{world.signed.pk}/countersign", {"content_hash": world.signed.content_hash}),
        ("get", "/operator/ethics/", {}),
        ("post", f"/operator/ethics/{request_id}/decide", {"decision": "approve", "reason": "sound purpose"}),
        ("get", "/operator/incidents/", {}),
        ("post", "/operator/incidents/", {"summary": "x"}),
        ("get", f"/operator/incidents/{incident}/", {}),
        ("post", f"/operator/incidents/{incident}/notify", {}),
        ("post", f"/operator/incidents/{incident}/close", {}),
    ]


PAGE_IDS = [
    "dashboard", "second-factor", "organisations", "verify", "reject", "exclude-page", "exclude", "agreements",
    "countersign", "ethics", "ethics-decide", "incidents", "incident-record", "incident", "notify", "close",
]  # fmt: skip


def assert_nothing_changed(world: World) -> None:
    world.pending.refresh_from_db()
    assert world.pending.verification_state == Organisation.Verification.PENDING
    assert Agreement.objects.get(pk=world.signed.pk).state == Agreement.State.SIGNED
    assert AccessRequest.objects.get(pk=world.ethics_request.pk).state == AccessRequest.State.PENDING
    assert Incident.objects.get(pk=world.incident.pk).state == Incident.State.OPEN
    assert Incident.objects.count() == 1


@pytest.mark.parametrize("page", range(len(PAGE_IDS)), ids=PAGE_IDS)
@pytest.mark.parametrize("persona", ["alice", "holder_admin", "user_admin"])
def test_no_one_but_an_operator_reaches_a_workspace_page(request, world: World, persona: str, page: int) -> None:  # type: ignore[no-untyped-def]
    method, path, form = pages(world)[page]
    response = getattr(browser(request.getfixturevalue(persona)), method)(path, form)
    assert response.status_code == 404
    assert_nothing_changed(world)


@pytest.mark.parametrize("page", range(len(PAGE_IDS)), ids=PAGE_IDS)
def test_an_anonymous_visitor_is_sent_to_login(world: World, page: int) -> None:
    method, path, form = pages(world)[page]
    response = getattr(browser(None), method)(path, form)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert_nothing_changed(world)


@pytest.mark.parametrize("page", range(len(PAGE_IDS)), ids=PAGE_IDS)
def test_an_operator_reaches_every_workspace_page(world: World, operator: User, page: int) -> None:
    method, path, form = pages(world)[page]
    response = getattr(browser(operator), method)(path, form)
    assert response.status_code in (200, 302), (path, response.status_code)
    if response.status_code == 302:
        assert not response["Location"].startswith("/accounts/login/")


def test_a_disabled_staff_account_is_no_operator(world: World, operator: User) -> None:
    client = browser(operator)
    operator.is_active = False
    operator.save()
    assert client.get("/operator/").status_code in (302, 404)  # logged out by Django, or refused


def test_when_a_second_factor_is_required_the_operator_passes_it_first(world: World, operator: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TIERS_OPERATOR_2FA_REQUIRED = True
    client = browser(operator)
    response = client.get("/operator/ethics/")
    assert response.status_code == 302
    assert response["Location"] == "/operator/second-factor/?next=%2Foperator%2Fethics%2F"
    assert client.get(response["Location"]).status_code == 403
    client.post(f"/operator/organisations/{world.pending.slug}/verify")
    assert_nothing_changed(world)
    session = client.session
    session[SECOND_FACTOR_SESSION_KEY] = True
    session.save()
    assert client.get("/operator/ethics/").status_code == 200
    assert client.get("/operator/second-factor/?next=/operator/ethics/")["Location"] == "/operator/ethics/"


def test_the_dashboard_counts_each_queue(world: World, operator: User) -> None:
    html = browser(operator).get("/operator/").content.decode()
    for label in ("Applications to verify", "Agreements to countersign", "Access requests for ethics review"):
        assert f"{label}</a></th><td>1</td>" in html


def test_an_operator_countersigns_the_hash_shown(world: World, operator: User) -> None:
    client = browser(operator)
    html = client.get("/operator/agreements/").content.decode()
    assert world.signed.content_hash in html
    client.post(f"/operator/agreements/{world.signed.pk}/countersign", {"content_hash": "0" * 64})
    assert Agreement.objects.get(pk=world.signed.pk).state == Agreement.State.SIGNED
    client.post(f"/operator/agreements/{world.signed.pk}/countersign", {"content_hash": world.signed.content_hash})
    assert Agreement.objects.get(pk=world.signed.pk).state == Agreement.State.ACTIVE
    assert events("agreement.countersigned")[-1]["details"]["sha256"] == world.signed.content_hash
    assert world.signed.content_hash not in client.get("/operator/agreements/").content.decode()


def test_the_ethics_queue_shows_justification_and_coverage_and_decides(  # type: ignore[no-untyped-def]
    world: World, operator: User, alice: User, holder: Organisation, module: ConsentModule
) -> None:
    link(alice, holder, "traveller-1")
    consent.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    client = browser(operator)
    html = client.get("/operator/ethics/").content.decode()
    assert JUSTIFICATION in html
    assert "0 linked citizens consented to exactly this use when it was submitted; 1 now." in html
    response = client.post(
        f"/operator/ethics/{world.ethics_request.pk}/decide", {"decision": "approve", "reason": "sound purpose"}
    )
    assert response.status_code == 302
    decided = AccessRequest.objects.get(pk=world.ethics_request.pk)
    assert decided.state == AccessRequest.State.APPROVED
    assert decided.decided_by == f"operator:{operator.pk}"
    assert decided.grants.count() == 1
    assert JUSTIFICATION not in client.get("/operator/ethics/").content.decode()


def test_an_ethics_rejection_needs_a_reason(world: World, operator: User) -> None:
    client = browser(operator)
    client.post(f"/operator/ethics/{world.ethics_request.pk}/decide", {"decision": "reject", "reason": ""})
    assert AccessRequest.objects.get(pk=world.ethics_request.pk).state == AccessRequest.State.PENDING
    client.post(f"/operator/ethics/{world.ethics_request.pk}/decide", {"decision": "reject", "reason": "too broad"})
    rejected = AccessRequest.objects.get(pk=world.ethics_request.pk)
    assert rejected.state == AccessRequest.State.REJECTED
    assert rejected.decision_reason == "too broad"


def test_the_exclusion_page_says_what_stops_and_excludes_with_the_reason(  # type: ignore[no-untyped-def]
    world: World, operator: User, data_user: Organisation
) -> None:
    client = browser(operator)
    html = client.get(f"/operator/organisations/{data_user.slug}/exclude").content.decode()
    assert "active API clients" in html
    client.post(f"/operator/organisations/{data_user.slug}/exclude", {"reason": ""})
    data_user.refresh_from_db()
    assert data_user.verification_state == Organisation.Verification.VERIFIED
    client.post(f"/operator/organisations/{data_user.slug}/exclude", {"reason": "re-identification attempt"})
    data_user.refresh_from_db()
    assert data_user.verification_state == Organisation.Verification.EXCLUDED
    assert data_user.state_reason == "re-identification attempt"
    assert "re-identification attempt" in client.get("/operator/organisations/").content.decode()


def test_an_operator_records_notifies_and_closes_an_incident(world: World, operator: User) -> None:
    client = browser(operator)
    response = client.post(
        "/operator/incidents/",
        {
            "summary": "Export replayed",
            "description": "A grant's records were read after its retention.",
            "occurred_at": "2026-01-10T08:00",
            "detected_at": "2026-01-10T09:30",
            "organisation": world.pending.slug,
            "grants": "",
            "personal_data": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()
    incident = Incident.objects.get(summary="Export replayed")
    assert incident.organisation == world.pending
    assert incident.personal_data
    assert client.get(f"/operator/incidents/{incident.pk}/").status_code == 200
    client.post(f"/operator/incidents/{incident.pk}/notify")
    assert Incident.objects.get(pk=incident.pk).state == Incident.State.NOTIFIED
    client.post(f"/operator/incidents/{incident.pk}/close")
    assert Incident.objects.get(pk=incident.pk).state == Incident.State.CLOSED


def test_an_incident_form_with_detection_before_occurrence_is_shown_again(world: World, operator: User) -> None:
    response = browser(operator).post(
        "/operator/incidents/",
        {
            "summary": "Backwards",
            "description": "Dates the wrong way round.",
            "occurred_at": "2026-01-10T10:00",
            "detected_at": "2026-01-10T09:00",
            "grants": "not-a-uuid",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Grant ids look like" in html
    assert not Incident.objects.filter(summary="Backwards").exists()
