"""The public transparency pages and the register API: no login, no citizen data, proofs anyone can check."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import segno
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from broker import audit
from broker.audit import selectors as audit_selectors
from broker.audit import sequencer
from broker.dga import logo
from broker.dga.models import AnnualReport, OperatorProfile
from broker.dga.profile import DEMO_PROFILE
from broker.models import Organisation, User
from consent.models import ConsentModule
from sharing import delivery, services
from sharing.models import Agreement, Dataset
from tests.sharing.conftest import (
    RESEARCH,
    agreement_in_force,
    consent_to,
    grant_for,
    link,
    module,
    terms,
    trips,
    trips_csv,
    upload,
)

__all__ = ["module", "trips"]  # fixtures used below

PAGES = ["/transparency/", "/transparency/agreements/", "/transparency/grants/", "/transparency/log/",
         "/transparency/reports/"]  # fmt: skip
LOGO_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>'
ALTRUISM_LABEL = "Data altruism organisation recognised in the Union"
INTERMEDIATION_LABEL = "Data intermediation services provider recognised in the Union"


@pytest.fixture(autouse=True)
def no_logo_file(settings: Any) -> None:
    """The official artwork is not installed unless a test installs it."""
    settings.TIERS_DGA_LOGO_FILE = ""


@pytest.fixture
def profile(db: None) -> OperatorProfile:
    """Tiers registered as an active data altruism organisation, as the demo seeds it."""
    return OperatorProfile.objects.create(registered_at=datetime.date(2026, 1, 15), **DEMO_PROFILE)


@pytest.fixture
def installed_logo(settings: Any, tmp_path: Path) -> bytes:
    path = tmp_path / "dga-logo.svg"
    path.write_bytes(LOGO_SVG)
    settings.TIERS_DGA_LOGO_FILE = str(path)
    return LOGO_SVG


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


# --- every page --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("persona", [None, "stranger"])
def test_every_public_page_answers_without_login(
    request: pytest.FixtureRequest, client: Client, profile: OperatorProfile, path: str, persona: str | None
) -> None:
    if persona:
        client.force_login(request.getfixturevalue(persona))
    html = page(client, path)
    assert html.count("<h1") == 1
    assert 'aria-label="Transparency"' in html


# --- the register entry ------------------------------------------------------------------------------


def test_the_register_page_shows_every_field_of_the_profile(client: Client, profile: OperatorProfile) -> None:
    html = page(client, "/transparency/")
    for value in ("Tiers — démonstration", "DEMO-FR-DAO-0001", "Autorité de démonstration (demo)", "FR",
                  "1 place de la Mairie", "dpo@tiers.example", "https://tiers.example",
                  "https://register.example/data-altruism/DEMO-FR-DAO-0001", "registered and active",
                  "data altruism organisation registered under Art. 19", "Art. 19"):  # fmt: skip
        assert value in html, value


def test_an_active_registration_without_the_logo_file_shows_the_prescribed_label(
    client: Client, profile: OperatorProfile
) -> None:
    html = page(client, "/transparency/")
    assert ALTRUISM_LABEL in html
    assert "/transparency/logo.svg" not in html
    assert client.get("/transparency/logo.svg").status_code == 404


def test_an_active_registration_with_the_logo_file_shows_the_official_logo(
    client: Client, profile: OperatorProfile, installed_logo: bytes
) -> None:
    html = page(client, "/transparency/")
    assert '<img class="dga-logo" width="200" src="/transparency/logo.svg" alt="' + ALTRUISM_LABEL + '">' in html
    served = client.get("/transparency/logo.svg")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/svg+xml"
    assert served.content == installed_logo
    assert "default-src 'none'" in served["Content-Security-Policy"]  # opened directly, it runs nothing


@pytest.mark.parametrize("status", ["suspended", "withdrawn", "applied"])
def test_no_logo_label_or_qr_code_while_the_registration_is_not_active(
    client: Client, profile: OperatorProfile, installed_logo: bytes, status: str
) -> None:
    profile.status = status
    profile.save()
    html = page(client, "/transparency/")
    assert profile.get_status_display() in html
    assert ALTRUISM_LABEL not in html
    assert "logo.svg" not in html
    assert "register-qr.svg" not in html
    assert client.get("/transparency/logo.svg").status_code == 404
    assert client.get("/transparency/register-qr.svg").status_code == 404


def test_a_data_altruism_organisation_shows_a_qr_code_of_its_union_register_entry(
    client: Client, profile: OperatorProfile
) -> None:
    html = page(client, "/transparency/")
    assert '<img src="/transparency/register-qr.svg"' in html
    assert f'<a href="{profile.union_register_url}">Our entry in the Union register' in html
    served = client.get("/transparency/register-qr.svg")
    assert served["Content-Type"] == "image/svg+xml"
    assert b"<path" in served.content
    # The same modules as a QR code of the register URL, and of nothing else.
    assert served.content == logo.qr_svg(profile.union_register_url)
    assert served.content != logo.qr_svg("https://register.example/another-entry")
    assert f"<title>{profile.union_register_url}</title>".encode() in served.content
    modules = segno.make(profile.union_register_url, error="m").symbol_size(scale=4, border=4)
    assert f'width="{modules[0]}"'.encode() in served.content


def test_an_intermediation_service_shows_its_own_label_and_no_qr_code(client: Client, profile: OperatorProfile) -> None:
    profile.role = OperatorProfile.Role.INTERMEDIATION
    profile.save()
    html = page(client, "/transparency/")
    assert INTERMEDIATION_LABEL in html
    assert ALTRUISM_LABEL not in html
    assert "register-qr.svg" not in html
    assert "Art. 11" in html


def test_before_registration_the_page_says_so(client: Client, db: None) -> None:
    html = page(client, "/transparency/")
    assert "has not recorded its registration yet" in html
    assert ALTRUISM_LABEL not in html


# --- the register API --------------------------------------------------------------------------------


def test_the_register_api_answers_the_profile_without_login(api: APIClient, profile: OperatorProfile) -> None:
    response = api.get("/api/v1/register")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "active"
    assert body["legal_name"] == profile.legal_name
    assert body["role"] == {
        "code": "data_altruism_organisation",
        "name": "data altruism organisation registered under Art. 19",
        "article": "Art. 19",
        "regulation": "Regulation (EU) 2022/868",
        "regulation_url": "http://data.europa.eu/eli/reg/2022/868/oj",
    }
    for field in ("registration_number", "competent_authority", "country", "address", "contact_email", "website",
                  "union_register_url"):  # fmt: skip
        assert body[field] == getattr(profile, field)
    assert body["registered_at"] == "2026-01-15"
    assert body["recognition_label"] == ALTRUISM_LABEL
    assert body["logo_url"] is None  # not installed
    assert body["links"]["transparency"] == "http://testserver/transparency/"
    assert body["links"]["agreements"] == "http://testserver/transparency/agreements/"
    assert body["links"]["agreements_api"] == "http://testserver/api/v1/agreements/"
    assert body["links"]["grants"] == "http://testserver/transparency/grants/"
    assert body["links"]["transparency_log"] == "http://testserver/transparency/log/"
    assert body["links"]["transparency_log_api"] == "http://testserver/api/v1/audit/"
    assert body["links"]["annual_reports"] == "http://testserver/transparency/reports/"
    assert body["links"]["annual_report_api"] == "http://testserver/api/v1/reports/annual/{year}"
    assert body["links"]["jwks"] == "http://testserver/oauth/jwks"


def test_the_register_api_names_the_logo_only_while_active(
    api: APIClient, profile: OperatorProfile, installed_logo: bytes
) -> None:
    assert api.get("/api/v1/register").json()["logo_url"] == "http://testserver/transparency/logo.svg"
    profile.status = OperatorProfile.Status.SUSPENDED
    profile.save()
    body = api.get("/api/v1/register").json()
    assert body["status"] == "suspended"
    assert body["logo_url"] is body["recognition_label"] is None


def test_the_register_api_says_unregistered_before_an_operator_records_it(api: APIClient, db: None) -> None:
    response = api.get("/api/v1/register")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unregistered"
    assert body["legal_name"] is body["role"] is body["registration_number"] is None
    assert body["links"]["transparency"] == "http://testserver/transparency/"


def test_the_register_api_ignores_credentials(api: APIClient, profile: OperatorProfile) -> None:
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api.get("/api/v1/register").status_code == 200


# --- agreements --------------------------------------------------------------------------------------


@pytest.fixture
def agreements(holder_admin: User, operator: User, trips: Dataset, module: ConsentModule) -> dict[str, Agreement]:
    """One agreement in force, one terminated, one draft the holder has not signed."""
    in_force = agreement_in_force(holder_admin, operator, [trips], title="Trips for the tram line")
    ended = agreement_in_force(holder_admin, operator, [trips], title="Trips for the old bus plan")
    ended = services.agreement_terminate(by=holder_admin, agreement=ended, reason="the plan was dropped")
    draft = services.agreement_propose(
        by=holder_admin, holder=trips.holder, terms=terms([trips], title="Unsigned idea")
    )
    return {"in_force": in_force, "ended": ended, "draft": draft}


def test_agreements_in_force_and_ended_are_listed_with_their_odrl_policy(
    client: Client, agreements: dict[str, Agreement]
) -> None:
    html = page(client, "/transparency/agreements/")
    for agreement in (agreements["in_force"], agreements["ended"]):
        assert agreement.title in html
        assert f'href="/transparency/agreements/{agreement.pk}/"' in html
        assert f'href="/api/v1/agreements/{agreement.pk}/odrl"' in html
        assert agreement.content_hash in html
    assert (
        html.index("Agreements in force")
        < html.index("Trips for the tram line")
        < html.index("Agreements superseded, terminated or expired")
        < html.index("Trips for the old bus plan")
    )
    assert "Volta Énergie" in html
    assert "terminated" in html


def test_a_draft_agreement_is_not_public(client: Client, agreements: dict[str, Agreement]) -> None:
    draft = agreements["draft"]
    assert "Unsigned idea" not in page(client, "/transparency/agreements/")
    assert client.get(f"/transparency/agreements/{draft.pk}/").status_code == 404


def test_an_agreement_page_shows_its_terms_datasets_and_signatures_with_their_log_entries(
    client: Client, agreements: dict[str, Agreement], trips: Dataset
) -> None:
    sequencer.sequence()
    agreement = Agreement.objects.get(pk=agreements["in_force"].pk)
    html = page(client, f"/transparency/agreements/{agreement.pk}/")
    assert trips.title in html
    assert RESEARCH in html
    assert "public authority" in html
    assert f"<code>{agreement.holder_signed_by}</code>" in html
    assert f"<code>{agreement.countersigned_by}</code>" in html
    signed = audit_selectors.entries(
        AnonymousUser(), verb="agreement.signed", subject=f"agreement:{agreement.pk}"
    ).get()
    assert f'href="/transparency/log/?leaf_index={signed.leaf_index}"' in html
    assert f'href="/api/v1/agreements/{agreement.pk}/odrl"' in html


def test_an_agreement_page_links_its_predecessor_and_successor(
    client: Client, holder_admin: User, operator: User, agreements: dict[str, Agreement], trips: Dataset
) -> None:
    first = agreements["in_force"]
    draft = services.agreement_propose(
        by=holder_admin, holder=trips.holder, terms=terms([trips], title=first.title), predecessor=first
    )
    services.agreement_sign(by=holder_admin, agreement=draft, content_hash=draft.content_hash)
    second = services.agreement_countersign(by=operator, agreement=draft, content_hash=draft.content_hash)
    assert f'href="/transparency/agreements/{first.pk}/"' in page(client, f"/transparency/agreements/{second.pk}/")
    assert f'href="/transparency/agreements/{second.pk}/"' in page(client, f"/transparency/agreements/{first.pk}/")
    assert "replaced by a newer version" in page(client, f"/transparency/agreements/{first.pk}/")


# --- grants ------------------------------------------------------------------------------------------


def test_a_grant_is_listed_with_its_organisation_purpose_and_period_and_no_citizen(
    client: Client, holder: Organisation, holder_admin: User, operator: User, trips: Dataset, module: ConsentModule,
    data_user: Organisation, user_admin: User, alice: User,
) -> None:  # fmt: skip
    agreement_in_force(holder_admin, operator, [trips])
    upload(holder_admin, trips, trips_csv([("T-ALICE-77", "2026-03-01", "Gare", "Campus", 1)]))
    link(alice, holder, "T-ALICE-77")
    consent_to(alice, module, RESEARCH)
    grant = grant_for(user_admin, data_user, trips)
    read = delivery.open_read(grant)
    included = read.delivery.included.get()
    html = page(client, "/transparency/grants/")
    assert "Ville de Marlieux" in html
    assert trips.title in html
    assert "Volta Énergie" in html
    assert RESEARCH in html
    assert timezone.localtime(grant.starts_at).strftime("%m/%d/%Y") in html
    assert timezone.localtime(grant.ends_at).strftime("%m/%d/%Y") in html
    assert "active" in html
    for secret in ("T-ALICE-77", included.pseudonym, alice.username, alice.email):
        assert secret not in html


def test_grants_come_fifty_to_a_page(
    client: Client, holder_admin: User, operator: User, trips: Dataset, module: ConsentModule,
    data_user: Organisation, user_admin: User,
) -> None:  # fmt: skip
    agreement_in_force(holder_admin, operator, [trips])
    for _ in range(51):
        grant_for(user_admin, data_user, trips)
    first = page(client, "/transparency/grants/")
    assert first.count('<th scope="row">Ville de Marlieux</th>') == 50
    assert 'href="?page=2"' in first
    second = page(client, "/transparency/grants/?page=2")
    assert second.count('<th scope="row">Ville de Marlieux</th>') == 1
    assert "page 2 of 2" in second


# --- the log -----------------------------------------------------------------------------------------


def write_entry(verb: str, citizen: User | None = None) -> None:
    with transaction.atomic():
        audit.record(verb=verb, actor="system", subject="thing:1", details={}, citizen=citizen)


@pytest.fixture
def sequenced_log(alice: User) -> None:
    """Leaves 0-2 public, leaf 3 about a citizen; all under a signed checkpoint."""
    for number in range(3):
        write_entry(f"test.happened_{'abc'[number]}")
    write_entry("consent.given", citizen=alice)
    sequencer.sequence()


def test_the_log_page_shows_the_latest_signed_checkpoint(client: Client, sequenced_log: None) -> None:
    checkpoint = audit_selectors.checkpoint_latest()
    html = page(client, "/transparency/log/")
    assert f'<dd id="checkpoint-size">{checkpoint.tree_size}</dd>' in html
    assert base64.b64encode(bytes(checkpoint.root_hash)).decode() in html
    assert checkpoint.jws in html
    assert checkpoint.note.splitlines()[0] in html
    assert 'src="/static/tiers/proof.js"' in html
    assert "<script>" not in html  # no inline script for the CSP to refuse
    assert " onclick" not in html


@pytest.mark.parametrize("leaf", ["0", "2"])
def test_the_server_verifies_a_public_entry_by_its_leaf_index(client: Client, sequenced_log: None, leaf: str) -> None:
    html = page(client, f"/transparency/log/?leaf_index={leaf}")
    assert f"Verified by Tiers' server: entry {leaf} is in the signed log of 4 entries." in html
    assert "recomputed from the public event" in html
    assert f"test.happened_{'abc'[int(leaf)]}" in html


def test_the_server_verifies_a_citizen_s_entry_from_its_published_hash_alone(
    client: Client, sequenced_log: None
) -> None:
    html = page(client, "/transparency/log/?leaf_index=3")
    assert "Verified by Tiers' server: entry 3" in html
    assert "only its hash is public" in html
    assert "consent.given" not in html


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        ("4", "the signed log has no entry at this position."),
        ("99999999999", "the signed log has no entry at this position."),
        ("-1", "this is not a leaf index"),
        ("one", "this is not a leaf index"),
        ("", "this is not a leaf index"),
    ],
)
def test_the_server_does_not_verify_an_index_outside_the_log(
    client: Client, sequenced_log: None, leaf: str, reason: str
) -> None:
    html = page(client, f"/transparency/log/?leaf_index={leaf}")
    assert "Not verified: " + reason in html
    assert "Verified by Tiers" not in html


def test_the_server_does_not_verify_a_tampered_proof(
    client: Client, sequenced_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = audit_selectors.inclusion_proof

    def tampered(leaf_index: int, size: int) -> dict[str, Any]:
        proof = real(leaf_index, size)
        proof["audit_path"][0] = base64.b64encode(b"\x00" * 32).decode()
        return proof

    monkeypatch.setattr(audit_selectors, "inclusion_proof", tampered)
    html = page(client, "/transparency/log/?leaf_index=1")
    assert "Not verified: the inclusion proof does not lead to the signed root hash." in html


def test_the_server_does_not_verify_a_checkpoint_signed_by_an_unknown_key(
    client: Client, sequenced_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broker.dga.views.keys.jwks", lambda: {"keys": []})
    html = page(client, "/transparency/log/?leaf_index=1")
    assert "Not verified: the checkpoint signature does not verify against the published keys." in html


# --- annual reports ----------------------------------------------------------------------------------


def test_published_reports_are_listed_with_their_links_and_the_current_year_in_progress(
    client: Client, db: None
) -> None:
    AnnualReport.objects.create(year=2025, document={}, jws="x.y.z", sha256="ab" * 32, audit_entry_id=1)
    html = page(client, "/transparency/reports/")
    year = timezone.localdate().year
    assert "ab" * 32 in html
    for path in ("/api/v1/reports/annual/2025", "/api/v1/reports/annual/2025?format=html",
                 "/api/v1/reports/annual/2025?format=pdf", f"/api/v1/reports/annual/{year}",
                 f"/api/v1/reports/annual/{year}?format=pdf"):  # fmt: skip
        assert f'href="{path}"' in html
    assert (
        html.index(f'<th scope="row">{year}</th>') < html.index("in progress") < html.index('<th scope="row">2025</th>')
    )


def test_no_in_progress_line_once_this_year_s_report_is_published(client: Client, db: None) -> None:
    year = timezone.localdate().year
    AnnualReport.objects.create(year=year, document={}, jws="x.y.z", sha256="cd" * 32, audit_entry_id=1)
    html = page(client, "/transparency/reports/")
    assert "in progress" not in html
    assert html.count(f'<th scope="row">{year}</th>') == 1


# --- the operator's edits ----------------------------------------------------------------------------


def test_an_operator_s_change_of_the_registration_is_recorded_in_the_log(
    admin_client: Client, profile: OperatorProfile
) -> None:
    form = {field: getattr(profile, field) for field in DEMO_PROFILE}
    form.update({"status": "suspended", "registered_at": "2026-01-15"})
    response = admin_client.post(f"/admin/broker/operatorprofile/{profile.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert profile.status == "suspended"
    sequencer.sequence()
    entry = audit_selectors.entries(AnonymousUser(), verb="dga.profile_updated").get()
    event = json.loads(bytes(entry.body.canonical))
    assert event["details"] == {"changed": ["status"], "status": "suspended"}
    assert admin_client.get("/admin/broker/operatorprofile/add/").status_code == 403  # one registration only
