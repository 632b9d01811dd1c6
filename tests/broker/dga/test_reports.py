"""The DGA reports of the demo: Art. 20(1) records, the signed Art. 20(2) annual report, the registration dossier."""

from __future__ import annotations

import builtins
import csv
import datetime
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
import rfc8785
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from broker.dga import reports
from broker.dga.models import AnnualReport, OperatorProfile
from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import AuditBody, Organisation, User
from sharing import services
from sharing.models import Agreement, Grant
from tests.sharing.test_demo import grant_token, read

pytestmark = pytest.mark.django_db
YEAR = timezone.now().year


@pytest.fixture
def credentials(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    call_command("seed_demo")
    return dict(json.loads(settings.DEMO_CREDENTIALS_FILE.read_text()))


@pytest.fixture
def demo_operator(credentials: dict[str, Any]) -> User:
    return User.objects.get(username="operator")


def verified_payload(token: str) -> bytes:
    """Check a compact JWS with PyJWT against the published JWKS alone; return its payload."""
    keys = APIClient().get("/oauth/jwks").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid)).key
    return bytes(jwt.api_jws.decode(token, key, algorithms=["ES256"]))


def annual(year: int = YEAR, **extra: Any) -> Any:
    return APIClient().get(f"/api/v1/reports/annual/{year}", **extra)


def test_the_current_years_report_verifies_with_pyjwt_and_names_every_demo_grant(
    credentials: dict[str, Any],
) -> None:
    answer = annual()
    assert answer.status_code == 200
    body = answer.json()
    assert body["published"] is False
    payload = verified_payload(body["jws"])
    assert payload == rfc8785.dumps(body["document"])
    assert hashlib.sha256(payload).hexdigest() == body["sha256"]
    users = {u["slug"]: u for u in body["document"]["data_users"]}
    for grant in credentials["grants"]:
        assert grant["purpose"] in [p["purpose"] for p in users[grant["organisation"]]["purposes"]]
        assert users[grant["organisation"]]["grants"] >= 1
    activities = body["document"]["activities"]
    assert activities["grants"]["granted"] >= len(credentials["grants"])
    assert activities["agreements"]["countersigned"] >= 1
    assert activities["consents"]["given"] >= 1


def test_reads_show_as_deliveries_pseudonyms_and_consent_checks(credentials: dict[str, Any]) -> None:
    for grant in credentials["grants"]:
        assert read(grant_token(credentials, grant["organisation"], grant["id"]), grant["id"])[0] == 200
    document = annual().json()["document"]
    assert document["activities"]["deliveries"]["hosted_reads"] == 2
    assert document["activities"]["deliveries"]["records_delivered"] == 80  # 20 trips x 2 consenting travellers x 2
    assert document["privacy"]["pseudonyms"]["issued"] == 4  # each reader sees two people, under its own pseudonyms
    assert document["privacy"]["consent_checks"]["hosted_reads_subjects_included"] == 4


def test_one_changed_byte_in_the_reports_jws_fails_verification(credentials: dict[str, Any]) -> None:
    token = annual().json()["jws"]
    header, payload, signature = token.split(".")
    middle = len(payload) // 2
    changed = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    with pytest.raises(jwt.exceptions.PyJWTError):
        verified_payload(f"{header}.{changed}.{signature}")


def test_the_records_list_every_demo_grant_in_json_and_csv(credentials: dict[str, Any]) -> None:
    as_json = APIClient().get(f"/api/v1/reports/records?year={YEAR}")
    assert as_json.status_code == 200
    rows = as_json.json()["records"]
    as_csv = APIClient().get(f"/api/v1/reports/records?year={YEAR}", HTTP_ACCEPT="text/csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    by_format = APIClient().get(f"/api/v1/reports/records?year={YEAR}&format=csv")
    assert by_format.content == as_csv.content
    for grant in credentials["grants"]:
        row = next(r for r in rows if r["grant"] == grant["id"])
        assert (row["organisation"]["slug"], row["purpose"]) == (grant["organisation"], grant["purpose"])
        assert row["organisation"]["identifier"].startswith("siren:")
        assert row["dataset"]["holder"]["slug"] == "ligne-bleue"
        assert row["fees"] == "none"
        assert row["source"] == "audit-log"
        assert row["approval_leaf_index"] is not None  # the demo's log is sequenced
        line = next(r for r in csv_rows if r["grant"] == grant["id"])
        assert (line["organisation_slug"], line["purpose"]) == (grant["organisation"], grant["purpose"])


def test_csv_cells_that_would_start_a_formula_are_defused(credentials: dict[str, Any]) -> None:
    Organisation.objects.filter(slug="labo-mobilites").update(name='=HYPERLINK("https://evil.example")')
    Organisation.objects.filter(slug="ville-de-marlieux").update(name="@SUM(A1)")
    answer = APIClient().get(f"/api/v1/reports/records?year={YEAR}&format=csv")
    names = {r["organisation_legal_name"] for r in csv.DictReader(io.StringIO(answer.content.decode()))}
    assert names == {'\'=HYPERLINK("https://evil.example")', "'@SUM(A1)"}
    assert [reports.defuse(v) for v in ("+1", "-1", "ok", 3)] == ["'+1", "'-1", "ok", 3]


@pytest.mark.parametrize("query", ["", "?year=", "?year=abc", "?year=1999", f"?year={YEAR + 1}"])
def test_records_without_a_valid_year_are_a_422_problem(db: None, query: str) -> None:
    answer = APIClient().get(f"/api/v1/reports/records{query}")
    assert answer.status_code == 422
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == "year"


def test_a_grant_whose_period_misses_the_year_is_absent_from_its_records(credentials: dict[str, Any]) -> None:
    demo = Grant.objects.get(pk=credentials["grants"][0]["id"])
    old = Grant.objects.create(
        organisation=demo.organisation,
        dataset=demo.dataset,
        purpose="dpv:OfficialStatistics",
        fields=["day"],
        starts_at=datetime.datetime(YEAR - 2, 3, 1, tzinfo=datetime.UTC),
        ends_at=datetime.datetime(YEAR - 2, 6, 1, tzinfo=datetime.UTC),
    )
    now = APIClient().get(f"/api/v1/reports/records?year={YEAR}").json()["records"]
    then = APIClient().get(f"/api/v1/reports/records?year={YEAR - 2}").json()["records"]
    assert str(old.pk) not in {r["grant"] for r in now}
    assert [(r["grant"], r["source"], r["duration_days"]) for r in then] == [(str(old.pk), "grants-table", 92)]


def test_a_revoked_grant_shows_when_it_was_revoked_with_its_log_entry(
    credentials: dict[str, Any], demo_operator: User
) -> None:
    grant = Grant.objects.get(pk=credentials["grants"][0]["id"])
    services.grant_revoke(by=demo_operator, grant=grant, reason="Demo: the study is cancelled.")
    row = next(r for r in reports.records(YEAR)["records"] if r["grant"] == str(grant.pk))
    assert row["revoked_at"] is not None
    assert AuditBody.objects.filter(verb="grant.revoked", subject=f"grant:{grant.pk}").exists()
    assert reports.annual_document(YEAR)["activities"]["grants"]["revoked"] == 1


def test_the_annual_report_renders_as_accessible_html(credentials: dict[str, Any]) -> None:
    for answer in (annual(HTTP_ACCEPT="text/html"), APIClient().get(f"/api/v1/reports/annual/{YEAR}?format=html")):
        assert answer.status_code == 200
        assert answer["Content-Type"].startswith("text/html")
        html = answer.content.decode()
        assert '<html lang="' in html
        assert "<script" not in html
        assert "Laboratoire Mobilités et Territoires" in html
        assert "Ville de Marlieux" in html


def test_the_annual_report_is_a_tagged_pdf(credentials: dict[str, Any]) -> None:
    for answer in (annual(HTTP_ACCEPT="application/pdf"), APIClient().get(f"/api/v1/reports/annual/{YEAR}?format=pdf")):
        assert answer.status_code == 200
        assert answer["Content-Type"] == "application/pdf"
        assert answer.content.startswith(b"%PDF")
        assert b"/StructTreeRoot" in answer.content


def test_without_pango_a_pdf_is_a_503_problem_naming_the_library(
    credentials: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_pango(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    answer = annual(HTTP_ACCEPT="application/pdf")
    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/problem+json"
    assert "libpango" in answer.json()["detail"]


def test_an_operator_publishes_a_year_once_with_its_audit_entry(demo_operator: User) -> None:
    report = reports.annual_report_publish(actor=demo_operator, year=YEAR, allow_current=True)
    assert AnnualReport.objects.get(year=YEAR).sha256 == report.sha256
    assert hashlib.sha256(rfc8785.dumps(report.document)).hexdigest() == report.sha256
    body = AuditBody.objects.get(entry_id=report.audit_entry_id)
    event = json.loads(bytes(body.canonical))
    assert (body.verb, event["details"]["year"], event["details"]["sha256"]) == (
        "report.published",
        YEAR,
        report.sha256,
    )
    assert event["actor"] == f"operator:{demo_operator.pk}"
    with pytest.raises(Conflict):
        reports.annual_report_publish(actor=demo_operator, year=YEAR, allow_current=True)


def test_a_non_operator_cannot_publish_and_the_current_year_needs_allow_current(
    credentials: dict[str, Any], demo_operator: User
) -> None:
    with pytest.raises(Forbidden):
        reports.annual_report_publish(actor=User.objects.get(username="alice"), year=YEAR - 1)
    with pytest.raises(InvalidInput):
        reports.annual_report_publish(actor=demo_operator, year=YEAR)
    assert not AnnualReport.objects.exists()
    assert not AuditBody.objects.filter(verb="report.published").exists()


def test_a_published_year_serves_its_stored_jws_unchanged(credentials: dict[str, Any]) -> None:
    out = io.StringIO()
    call_command("publish_annual_report", str(YEAR), "--now", stdout=out)
    stored = AnnualReport.objects.get(year=YEAR)
    assert stored.sha256 in out.getvalue()
    body = annual().json()
    assert body["published"] is True
    assert (body["jws"], body["sha256"]) == (stored.jws, stored.sha256)
    assert annual().json()["jws"] == stored.jws  # not re-signed on each request
    assert json.loads(verified_payload(body["jws"])) == stored.document
    assert annual(HTTP_ACCEPT="text/html").status_code == 200


def test_a_year_not_begun_has_no_report(db: None) -> None:
    answer = annual(YEAR + 1)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/problem+json"


def test_the_dossier_names_the_purposes_of_the_demo_agreements(credentials: dict[str, Any]) -> None:
    answer = APIClient().get("/api/v1/register/dossier")
    assert answer.status_code == 200
    dossier = answer.json()
    assert dossier["regulation"].endswith("Art. 19(4)")
    assert dossier["name"] == OperatorProfile.objects.get().legal_name
    objectives = {o["purpose"] for o in dossier["objectives_of_general_interest"]}
    agreed = {p for a in Agreement.objects.filter(state=Agreement.State.ACTIVE) for p in a.purposes}
    assert agreed
    assert objectives == agreed
    activities = dossier["data_altruism_activities"]
    assert {d["slug"] for d in activities["datasets"]} >= {"trips"}
    assert activities["consent"]["modules"]
    pdf = APIClient().get("/api/v1/register/dossier?format=pdf")
    assert pdf.content.startswith(b"%PDF")
    assert b"/StructTreeRoot" in pdf.content


def test_without_a_recorded_registration_the_dossier_is_a_404_problem(db: None) -> None:
    OperatorProfile.objects.all().delete()
    answer = APIClient().get("/api/v1/register/dossier")
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/problem+json"


def test_results_a_data_user_files_appear_in_the_signed_annual_report(credentials: dict[str, Any]) -> None:
    grant = Grant.objects.get(pk=next(g["id"] for g in credentials["grants"] if g["organisation"] == "labo-mobilites"))
    assert verified_json(annual())["results"] == []
    services.grant_revoke(by=User.objects.get(username="ligne-bleue-admin"), grant=grant, reason="the study ended")
    summary = "Evening trips of students showed two missing night bus links; the results went to the transport board."
    services.results_file(
        by=User.objects.get(username="labo-mobilites-admin"),
        grant=grant,
        summary=summary,
        data_deleted=True,
        outputs=["https://labo-mobilites.example/etude-2026"],
    )
    (result,) = verified_json(annual())["results"]
    assert (result["grant"], result["organisation"], result["purpose"]) == (
        str(grant.pk),
        "labo-mobilites",
        grant.purpose,
    )
    assert result["summary"] == summary
    assert result["outputs"] == ["https://labo-mobilites.example/etude-2026"]
    assert result["data_deleted"] is True


def verified_json(answer: Any) -> Any:
    """The annual report's document, read from its verified signature rather than from the JSON beside it."""
    assert answer.status_code == 200
    return json.loads(verified_payload(answer.json()["jws"]))
