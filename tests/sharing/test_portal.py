"""The sharing pages of an organisation, tried by its members, another organisation's, an operator and a stranger."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from broker import outbox
from broker.models import Membership, Organisation, User
from consent import services as consent_services
from consent.models import ConsentModule
from sharing import services
from sharing.models import AccessRequest, Agreement, Dataset, Grant, Record, Upload
from tests.factories import MembershipFactory

RESEARCH = "dpv:ScientificResearch"
SCHEMA = {
    "fields": [
        {"name": "meter", "type": "string"},
        {"name": "day", "type": "date"},
        {"name": "kwh", "type": "number"},
    ]
}
MODULE = {
    "title_en": "Your energy use, for research",
    "title_fr": "Votre consommation d'énergie, pour la recherche",
    "notice_en": "Volta Énergie shares your daily meter readings, pseudonymised.",
    "notice_fr": "Volta Énergie partage vos relevés quotidiens, pseudonymisés.",
    "data_categories": ["dpv-pd:EnergyConsumption"],
    "purposes": [RESEARCH],
    "recipient_categories": ["research-body"],
    "duration_days": 365,
}
JUSTIFICATION = "Measure how heat waves change household energy use, to plan the cooling centres of the city."


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def day(offset: int = 0) -> str:
    return (timezone.localdate() + datetime.timedelta(days=offset)).isoformat()


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.TIERS_UPLOAD_DIR = str(tmp_path / "uploads")


@pytest.fixture
def researcher(data_user: Organisation) -> Organisation:
    """The data user, a research body, as agreements and consents name it."""
    Organisation.objects.filter(pk=data_user.pk).update(recipient_category="research-body")
    data_user.refresh_from_db()
    return data_user


@pytest.fixture
def module(holder: Organisation, holder_admin: User) -> ConsentModule:
    return consent_services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE)


@pytest.fixture
def dataset(holder: Organisation, holder_admin: User) -> Dataset:
    return services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="daily-readings",
        title="Daily meter readings",
        mode=Dataset.Mode.HOSTED,
        table_schema=SCHEMA,
        subject_key_field="meter",
        personal_fields=["meter"],
        data_categories=["dpv-pd:EnergyConsumption"],
    )


def propose(holder: Organisation, by: User, dataset: Dataset) -> Agreement:
    now = timezone.now()
    terms = services.AgreementTerms(
        title="Energy data for research",
        datasets=[dataset],
        purposes=[RESEARCH],
        recipient_categories=["research-body"],
        consent_modules=["energy"],
        approval_mode=Agreement.ApprovalMode.HOLDER,
        valid_from=now - datetime.timedelta(days=1),
        valid_until=now + datetime.timedelta(days=400),
        conditions={"retention_days_max": 90},
    )
    return services.agreement_propose(by=by, holder=holder, terms=terms)


@pytest.fixture
def agreement(
    holder: Organisation, holder_admin: User, operator: User, dataset: Dataset, module: ConsentModule
) -> Agreement:
    """An agreement in force, whose requests the holder reviews."""
    draft = propose(holder, holder_admin, dataset)
    services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    return services.agreement_countersign(by=operator, agreement=draft, content_hash=draft.content_hash)


@pytest.fixture
def consenting_alice(alice: User, holder: Organisation, module: ConsentModule) -> User:
    _, code = consent_services.link_code_issue(actor="system", holder=holder, subject_ref="METER-1")
    consent_services.link_redeem(citizen=alice, code=code)
    consent_services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    return alice


def submit(researcher: Organisation, user_admin: User, dataset: Dataset, agreement: Agreement) -> AccessRequest:
    return services.access_request_submit(
        by=user_admin,
        organisation=researcher,
        agreement=agreement,
        items=[services.RequestItem(dataset=dataset, fields=["day", "kwh"])],
        purpose=RESEARCH,
        justification=JUSTIFICATION,
        starts_at=timezone.now(),
        ends_at=timezone.now() + datetime.timedelta(days=30),
        retention_days=30,
    )


@pytest.fixture
def grant(
    researcher: Organisation, user_admin: User, holder_admin: User, dataset: Dataset, agreement: Agreement
) -> Grant:
    access_request = submit(researcher, user_admin, dataset, agreement)
    services.access_request_review(
        by=holder_admin, access_request=access_request, approve=True, reason="Sound purpose."
    )
    return Grant.objects.get(access_request=access_request)


def request_form(agreement: Agreement, dataset: Dataset, **changes: str) -> dict[str, str]:
    return {
        "target": f"{agreement.pk}/{dataset.pk}",
        "requested_fields": "day, kwh",
        "purpose": RESEARCH,
        "justification": JUSTIFICATION,
        "starts_on": day(0),
        "ends_on": day(30),
        "retention_days": "30",
        **changes,
    }


# --- who sees what ---------------------------------------------------------------------------------


def test_each_holder_page_renders_for_its_admin_with_its_content(holder_admin, holder, dataset, grant) -> None:  # type: ignore[no-untyped-def]
    client = browser(holder_admin)
    agreement = grant.agreement
    assert "Daily meter readings" in page(client.get("/org/volta/datasets/"))
    assert 'name="table_schema"' in page(client.get("/org/volta/datasets/new"))
    detail = page(client.get(f"/org/volta/datasets/{dataset.pk}/"))
    assert 'enctype="multipart/form-data"' in detail
    assert f"/org/volta/datasets/{dataset.pk}/withdraw" in detail
    assert "Energy data for research" in page(client.get("/org/volta/agreements/"))
    assert str(dataset.pk) in page(client.get("/org/volta/agreements/new"))
    assert agreement.content_hash in page(client.get(f"/org/volta/agreements/{agreement.pk}/"))
    assert "No request waits for your review." in page(client.get("/org/volta/reviews/"))
    grants = page(client.get("/org/volta/grants/"))
    assert "Ville de Marlieux" in grants
    assert f"/org/volta/grants/{grant.pk}/revoke" in grants
    home = page(client.get("/org/volta/"))
    assert "/org/volta/datasets/" in home
    assert "/org/volta/requests/" not in home  # a holder only, not a data user


def test_every_page_has_one_h1_no_script_and_a_label_for_each_input(  # type: ignore[no-untyped-def]
    holder_admin, user_admin, dataset, agreement, grant
) -> None:
    urls = [*holder_pages(dataset, agreement, grant), "/org/marlieux/requests/", "/org/marlieux/requests/new"]
    for url in urls:
        client = browser(user_admin if "marlieux" in url else holder_admin)
        html = page(client.get(url))
        assert html.count("<h1") == 1, url
        assert "<script" not in html, url
        for input_id in re.findall(r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"', html):
            assert f'for="{input_id}"' in html, (url, input_id)


def test_the_data_user_sees_its_requests_grants_and_clients_link(user_admin, researcher, grant) -> None:  # type: ignore[no-untyped-def]
    client = browser(user_admin)
    listing = page(client.get("/org/marlieux/requests/"))
    assert "Daily meter readings" in listing
    assert "day, kwh" in listing
    assert "Sound purpose." in listing
    assert "/org/marlieux/clients/" in listing
    form = page(client.get("/org/marlieux/requests/new"))
    assert f'value="{grant.agreement.pk}/{grant.dataset.pk}"' in form
    assert "/org/marlieux/requests/" in page(client.get("/org/marlieux/"))


def test_an_operator_sees_every_organisations_pages(operator, holder, researcher, grant) -> None:  # type: ignore[no-untyped-def]
    client = browser(operator)
    assert "Daily meter readings" in page(client.get("/org/volta/datasets/"))
    assert "Daily meter readings" in page(client.get("/org/marlieux/requests/"))


def holder_pages(dataset: Dataset, agreement: Agreement, grant: Grant) -> list[str]:
    return [
        "/org/volta/datasets/",
        "/org/volta/datasets/new",
        f"/org/volta/datasets/{dataset.pk}/",
        "/org/volta/agreements/",
        "/org/volta/agreements/new",
        f"/org/volta/agreements/{agreement.pk}/",
        "/org/volta/reviews/",
        "/org/volta/grants/",
    ]


def holder_posts(
    dataset: Dataset, agreement: Agreement, grant: Grant, pending: AccessRequest
) -> dict[str, dict[str, Any]]:
    return {
        "/org/volta/datasets/new": {
            "slug": "stolen",
            "title": "Stolen",
            "mode": "hosted",
            "table_schema": '{"fields": [{"name": "a"}]}',
        },
        f"/org/volta/datasets/{dataset.pk}/": {
            "file": SimpleUploadedFile("x.csv", b"meter,day,kwh\nM,2025-01-01,1\n"),
            "on_error": "keep_valid",
        },
        f"/org/volta/datasets/{dataset.pk}/withdraw": {"reason": "because"},
        f"/org/volta/agreements/{agreement.pk}/terminate": {"reason": "because"},
        f"/org/volta/agreements/{agreement.pk}/sign": {"content_hash": agreement.content_hash},
        f"/org/volta/agreements/{agreement.pk}/countersign": {"content_hash": agreement.content_hash},
        f"/org/volta/reviews/{pending.pk}/decide": {"decision": "approve", "reason": "because"},
        f"/org/volta/grants/{grant.pk}/revoke": {"reason": "because"},
    }


def test_a_member_of_another_organisation_gets_404_everywhere_and_changes_nothing(  # type: ignore[no-untyped-def]
    user_admin, researcher, dataset, agreement, grant, stranger
) -> None:
    pending = submit(researcher, user_admin, dataset, agreement)
    for outsider in (user_admin, stranger):
        client = browser(outsider)
        for url in holder_pages(dataset, agreement, grant):
            assert client.get(url).status_code == 404, url
        for url, data in holder_posts(dataset, agreement, grant, pending).items():
            assert client.post(url, data).status_code == 404, url
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.ACTIVE
    assert not Dataset.objects.filter(slug="stolen").exists()
    assert not Upload.objects.exists()
    assert Agreement.objects.get(pk=agreement.pk).state == Agreement.State.ACTIVE
    assert AccessRequest.objects.get(pk=pending.pk).state == AccessRequest.State.PENDING
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE


def test_the_holder_gets_404_on_the_data_users_pages(holder_admin, researcher) -> None:  # type: ignore[no-untyped-def]
    client = browser(holder_admin)
    assert client.get("/org/marlieux/requests/").status_code == 404
    assert client.get("/org/marlieux/requests/new").status_code == 404
    assert client.post("/org/marlieux/requests/new", {}).status_code == 404


def test_another_organisations_objects_are_not_found_under_ones_own_address(  # type: ignore[no-untyped-def]
    user_admin, researcher, dataset, agreement, grant
) -> None:
    client = browser(user_admin)
    assert client.get(f"/org/marlieux/datasets/{dataset.pk}/").status_code == 404
    assert client.get(f"/org/marlieux/agreements/{agreement.pk}/").status_code == 404
    assert client.post(f"/org/marlieux/agreements/{agreement.pk}/terminate", {"reason": "x"}).status_code == 404
    assert client.post(f"/org/marlieux/datasets/{dataset.pk}/withdraw", {"reason": "x"}).status_code == 404
    assert client.post(f"/org/marlieux/grants/{grant.pk}/revoke", {"reason": "x"}).status_code == 404
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE
    assert Agreement.objects.get(pk=agreement.pk).state == Agreement.State.ACTIVE


def test_anonymous_visitors_are_sent_to_log_in(holder) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/org/volta/datasets/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- datasets --------------------------------------------------------------------------------------


def test_registering_a_dataset_through_the_form_creates_it(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    form = {
        "slug": "outages",
        "title": "Power outages",
        "mode": "federated",
        "api_base_url": "https://api.volta.example/v1/",
        "table_schema": '{"fields": [{"name": "meter", "type": "string"}, {"name": "minutes", "type": "integer"}]}',
        "subject_key_field": "meter",
        "personal_fields": "meter, ",
        "data_categories": "dpv-pd:EnergyConsumption, dpv-pd:Location",
    }
    response = browser(holder_admin).post("/org/volta/datasets/new", form)
    dataset = Dataset.objects.get(holder=holder, slug="outages")
    assert response["Location"] == f"/org/volta/datasets/{dataset.pk}/"
    assert dataset.field_names == ["meter", "minutes"]
    assert dataset.personal_fields == ["meter"]
    assert dataset.data_categories == ["dpv-pd:EnergyConsumption", "dpv-pd:Location"]
    assert dataset.api_base_url == "https://api.volta.example/v1"


def test_a_schema_that_is_not_json_is_shown_next_to_its_field_and_nothing_is_created(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    form = {"slug": "broken", "title": "Broken", "mode": "hosted", "table_schema": "{fields: oops"}
    html = page(browser(holder_admin).post("/org/volta/datasets/new", form))
    assert "This is not JSON" in html
    assert 'aria-describedby="id_table_schema_helptext id_table_schema_error"' in html
    assert 'aria-invalid="true"' in html
    assert "{fields: oops" in html  # the input is kept
    assert not Dataset.objects.filter(slug="broken").exists()


def test_a_refusal_of_the_service_is_shown_on_the_form(holder_admin, holder, dataset) -> None:  # type: ignore[no-untyped-def]
    form = {"slug": "daily-readings", "title": "Again", "mode": "hosted", "table_schema": '{"fields": [{"name": "a"}]}'}
    html = page(browser(holder_admin).post("/org/volta/datasets/new", form))
    assert "You already have a dataset &#x27;daily-readings&#x27;." in html
    assert Dataset.objects.filter(holder=holder).count() == 1


def test_uploading_a_small_csv_loads_its_valid_rows_and_lists_the_invalid_one(  # type: ignore[no-untyped-def]
    holder_admin, dataset, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    monkeypatch.setattr(outbox, "relay", outbox.dispatch)  # the worker's job, run here once the upload commits
    csv = b"meter,day,kwh\nM-1,2025-01-01,12.5\nM-2,not a day,3\nM-3,2025-01-02,7\n"
    client = browser(holder_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/org/volta/datasets/{dataset.pk}/",
            {"file": SimpleUploadedFile("readings.csv", csv), "on_error": "keep_valid"},
        )
    assert response.status_code == 302
    upload = Upload.objects.get(dataset=dataset)
    assert (upload.format, upload.state, upload.rows_loaded, upload.rows_rejected) == ("csv", "loaded", 2, 1)
    assert Record.objects.filter(dataset=dataset).count() == 2
    html = page(client.get(f"/org/volta/datasets/{dataset.pk}/"))
    assert "<td>3</td> <td>2</td> <td>1</td>" in " ".join(html.split())  # rows, loaded, rejected
    assert upload.sha256 in html
    assert '<tr><th scope="row">3</th><td>day</td>' in html  # the invalid line, its field, then its reason
    assert "Records held by Tiers</dt><dd>2</dd>" in html


def test_a_json_lines_file_is_sent_as_json_lines(holder_admin, dataset) -> None:  # type: ignore[no-untyped-def]
    body = b'{"meter": "M-1", "day": "2025-01-01", "kwh": 1}\n'
    browser(holder_admin).post(
        f"/org/volta/datasets/{dataset.pk}/",
        {"file": SimpleUploadedFile("readings.ndjson", body), "on_error": "all_or_nothing", "replace": "on"},
    )
    upload = Upload.objects.get(dataset=dataset)
    assert (upload.format, upload.on_error, upload.replace) == ("jsonl", "all_or_nothing", True)


def test_a_file_of_another_kind_is_refused_on_the_form(holder_admin, dataset) -> None:  # type: ignore[no-untyped-def]
    html = page(
        browser(holder_admin).post(
            f"/org/volta/datasets/{dataset.pk}/",
            {"file": SimpleUploadedFile("readings.xlsx", b"PK..."), "on_error": "keep_valid"},
        )
    )
    assert "Send a .csv, .jsonl or .ndjson file." in html
    assert 'id="id_file_error"' in html
    assert not Upload.objects.exists()


def test_withdrawing_a_dataset_needs_a_reason_and_ends_its_grants(holder_admin, dataset, grant) -> None:  # type: ignore[no-untyped-def]
    client = browser(holder_admin)
    refused = page(client.post(f"/org/volta/datasets/{dataset.pk}/withdraw", {"reason": ""}, follow=True))
    assert "Say why the dataset is withdrawn." in refused
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.ACTIVE
    html = page(
        client.post(f"/org/volta/datasets/{dataset.pk}/withdraw", {"reason": "Meter data retired"}, follow=True)
    )
    assert "Dataset “Daily meter readings” withdrawn." in html
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.WITHDRAWN
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.REVOKED
    assert "Send a file" not in html


# --- agreements ------------------------------------------------------------------------------------


def test_proposing_and_signing_an_agreement_through_the_pages(holder_admin, holder, dataset, module) -> None:  # type: ignore[no-untyped-def]
    client = browser(holder_admin)
    form = {
        "title": "Readings for science",
        "datasets": [str(dataset.pk)],
        "purposes": [RESEARCH],
        "recipient_categories": ["research-body", "public-authority"],
        "consent_modules": ["energy"],
        "approval_mode": "holder",
        "valid_from": day(0),
        "valid_until": day(364),
        "retention_days_max": "60",
    }
    assert 'value="energy"' in page(client.get("/org/volta/agreements/new"))
    response = client.post("/org/volta/agreements/new", form)
    agreement = Agreement.objects.get(holder=holder)
    assert response["Location"] == f"/org/volta/agreements/{agreement.pk}/"
    assert agreement.state == Agreement.State.DRAFT
    assert agreement.recipient_categories == ["public-authority", "research-body"]
    assert agreement.conditions["retention_days_max"] == 60
    assert agreement.valid_until - agreement.valid_from == datetime.timedelta(days=365)  # the last day is included
    detail = page(client.get(f"/org/volta/agreements/{agreement.pk}/"))
    assert f'name="content_hash" value="{agreement.content_hash}"' in detail
    assert "Countersign" not in detail
    client.post(f"/org/volta/agreements/{agreement.pk}/sign", {"content_hash": agreement.content_hash})
    agreement.refresh_from_db()
    assert agreement.state == Agreement.State.SIGNED
    assert agreement.holder_signed_by == f"user:{holder_admin.pk}"


def test_a_proposal_the_service_refuses_shows_each_problem(holder_admin, holder, dataset) -> None:  # type: ignore[no-untyped-def]
    form = {
        "title": "No modules",
        "datasets": [str(dataset.pk)],
        "purposes": [RESEARCH],
        "recipient_categories": ["research-body"],
        "approval_mode": "holder",
        "valid_from": day(0),
        "valid_until": day(30),
        "retention_days_max": "60",
    }
    html = page(browser(holder_admin).post("/org/volta/agreements/new", form))
    assert "Personal data needs the consent modules that cover it." in html
    assert not Agreement.objects.exists()


def test_signing_a_hash_other_than_the_drafts_is_refused(holder_admin, holder, dataset, module) -> None:  # type: ignore[no-untyped-def]
    draft = propose(holder, holder_admin, dataset)
    html = page(
        browser(holder_admin).post(f"/org/volta/agreements/{draft.pk}/sign", {"content_hash": "0" * 64}, follow=True)
    )
    assert "content hash differs" in html
    assert Agreement.objects.get(pk=draft.pk).state == Agreement.State.DRAFT


def test_an_operator_countersigns_a_signed_agreement(operator, holder_admin, holder, dataset, module) -> None:  # type: ignore[no-untyped-def]
    draft = propose(holder, holder_admin, dataset)
    services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    assert "Countersign" not in page(browser(holder_admin).get(f"/org/volta/agreements/{draft.pk}/"))
    client = browser(operator)
    assert "Countersign for Tiers" in page(client.get(f"/org/volta/agreements/{draft.pk}/"))
    html = page(
        client.post(f"/org/volta/agreements/{draft.pk}/countersign", {"content_hash": draft.content_hash}, follow=True)
    )
    assert "Agreement countersigned: it is in force." in html
    draft.refresh_from_db()
    assert (draft.state, draft.countersigned_by) == (Agreement.State.ACTIVE, f"operator:{operator.pk}")


def test_the_holder_cannot_countersign_its_own_agreement(holder_admin, holder, dataset, module) -> None:  # type: ignore[no-untyped-def]
    draft = propose(holder, holder_admin, dataset)
    services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    browser(holder_admin).post(f"/org/volta/agreements/{draft.pk}/countersign", {"content_hash": draft.content_hash})
    assert Agreement.objects.get(pk=draft.pk).state == Agreement.State.SIGNED


def test_terminating_an_agreement_ends_its_grants(holder_admin, agreement, grant) -> None:  # type: ignore[no-untyped-def]
    html = page(
        browser(holder_admin).post(
            f"/org/volta/agreements/{agreement.pk}/terminate", {"reason": "Study over"}, follow=True
        )
    )
    assert "Agreement terminated." in html
    assert Agreement.objects.get(pk=agreement.pk).state == Agreement.State.TERMINATED
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.REVOKED


# --- requests, reviews and grants ------------------------------------------------------------------


def test_a_request_that_breaks_rules_names_each_rule_and_keeps_the_input(  # type: ignore[no-untyped-def]
    user_admin, researcher, dataset, agreement
) -> None:
    form = request_form(
        agreement, dataset, requested_fields="kwh, meter", justification="Because.", retention_days="400"
    )
    html = page(browser(user_admin).post("/org/marlieux/requests/new", form))
    for rule in ("fields_in_schema", "justification_given", "retention_within_limit"):
        assert f"<code>{rule}</code>" in html, rule
    retention_error = html.split('id="id_retention_days_error">', 1)[1].split("</ul>", 1)[0]
    assert "90" in retention_error  # the agreement's limit, next to the field it is about
    assert 'aria-describedby="id_retention_days_helptext id_retention_days_error"' in html
    assert 'value="kwh, meter"' in html
    assert "Because.</textarea>" in html
    assert f'value="{agreement.pk}/{dataset.pk}" selected' in html
    assert not AccessRequest.objects.exists()


def test_a_request_goes_to_the_holders_inbox_and_approving_it_creates_a_grant(  # type: ignore[no-untyped-def]
    user_admin, researcher, holder_admin, dataset, agreement, consenting_alice
) -> None:
    response = browser(user_admin).post("/org/marlieux/requests/new", request_form(agreement, dataset))
    assert response["Location"] == "/org/marlieux/requests/"
    access_request = AccessRequest.objects.get(organisation=researcher)
    assert access_request.state == AccessRequest.State.PENDING
    assert access_request.items == [{"dataset": str(dataset.pk), "fields": ["day", "kwh"]}]
    client = browser(holder_admin)
    inbox = page(client.get("/org/volta/reviews/"))
    assert "Ville de Marlieux" in inbox
    assert JUSTIFICATION in inbox
    assert "Daily meter readings: day, kwh" in inbox
    assert "1 linked citizen consented to exactly this use" in inbox
    client.post(f"/org/volta/reviews/{access_request.pk}/decide", {"decision": "approve", "reason": "Clear purpose."})
    access_request.refresh_from_db()
    assert (access_request.state, access_request.decision_reason) == ("approved", "Clear purpose.")
    grant = Grant.objects.get(access_request=access_request)
    assert (grant.organisation, grant.dataset, grant.fields) == (researcher, dataset, ["day", "kwh"])
    assert grant.is_active()
    assert "No request waits for your review." in page(client.get("/org/volta/reviews/"))


def test_rejecting_needs_a_reason_and_creates_no_grant(
    user_admin, researcher, holder_admin, dataset, agreement
) -> None:  # type: ignore[no-untyped-def]
    access_request = submit(researcher, user_admin, dataset, agreement)
    client = browser(holder_admin)
    client.post(f"/org/volta/reviews/{access_request.pk}/decide", {"decision": "reject", "reason": ""})
    assert AccessRequest.objects.get(pk=access_request.pk).state == AccessRequest.State.PENDING
    client.post(f"/org/volta/reviews/{access_request.pk}/decide", {"decision": "reject", "reason": "Too broad."})
    assert AccessRequest.objects.get(pk=access_request.pk).state == AccessRequest.State.REJECTED
    assert not Grant.objects.exists()
    assert "Too broad." in page(browser(user_admin).get("/org/marlieux/requests/"))


def test_a_member_without_the_reviewer_role_sees_no_decision_buttons(  # type: ignore[no-untyped-def]
    user_admin, researcher, holder, dataset, agreement
) -> None:
    access_request = submit(researcher, user_admin, dataset, agreement)
    steward = MembershipFactory(organisation=holder, role=Membership.Role.DATA_STEWARD).user
    client = browser(steward)
    html = page(client.get("/org/volta/reviews/"))
    assert JUSTIFICATION in html
    assert 'value="approve"' not in html
    client.post(f"/org/volta/reviews/{access_request.pk}/decide", {"decision": "approve", "reason": "Me too."})
    assert AccessRequest.objects.get(pk=access_request.pk).state == AccessRequest.State.PENDING


def test_revoking_a_grant_ends_it_and_the_data_user_sees_why(holder_admin, user_admin, grant) -> None:  # type: ignore[no-untyped-def]
    client = browser(holder_admin)
    client.post(f"/org/volta/grants/{grant.pk}/revoke", {"reason": ""})
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE
    html = page(client.post(f"/org/volta/grants/{grant.pk}/revoke", {"reason": "Misuse reported"}, follow=True))
    assert "Grant of Ville de Marlieux revoked" in html
    revoked = Grant.objects.get(pk=grant.pk)
    assert (revoked.state, revoked.revoke_reason) == (Grant.State.REVOKED, "Misuse reported")
    assert f"/org/volta/grants/{grant.pk}/revoke" not in html
    assert "Misuse reported" in page(browser(user_admin).get("/org/marlieux/requests/"))


def test_a_data_user_cannot_revoke_its_grant_from_the_holders_page(user_admin, grant) -> None:  # type: ignore[no-untyped-def]
    assert browser(user_admin).post(f"/org/volta/grants/{grant.pk}/revoke", {"reason": "x"}).status_code == 404
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE
