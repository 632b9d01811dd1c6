"""The demo's grants, read with demo-credentials.json alone: consent decides what each delivers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from consent import services as consent
from consent.models import ConsentRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def credentials(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    call_command("seed_demo")
    return dict(json.loads(settings.DEMO_CREDENTIALS_FILE.read_text()))


def grant_token(credentials: dict[str, Any], organisation: str, grant_id: str) -> str:
    entry = next(
        c
        for c in credentials["clients"]
        if c["organisation"] == organisation and c["auth_method"] == "client_secret_basic"
    )
    pair = base64.b64encode(f"{entry['client_id']}:{entry['client_secret']}".encode()).decode()
    answer = APIClient().post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": f"grant:{grant_id}"},
        HTTP_AUTHORIZATION=f"Basic {pair}",
    )
    assert answer.status_code == 200, answer.content
    return str(answer.json()["access_token"])


def read(token: str, grant_id: str) -> tuple[int, list[dict[str, Any]]]:
    answer = APIClient().get(
        f"/api/v1/grants/{grant_id}/records", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/x-ndjson"
    )
    if answer.status_code != 200:
        return answer.status_code, []
    body = b"".join(answer.streaming_content).decode()  # type: ignore[attr-defined]
    return 200, [json.loads(line) for line in body.splitlines()]


def test_each_demo_organisation_reads_its_grant_and_sees_its_own_pseudonyms(credentials: dict[str, Any]) -> None:
    grants = {g["organisation"]: g["id"] for g in credentials["grants"]}
    city, lab = grants["ville-de-marlieux"], grants["labo-mobilites"]
    city_token = grant_token(credentials, "ville-de-marlieux", city)
    lab_token = grant_token(credentials, "labo-mobilites", lab)
    _, city_records = read(city_token, city)
    _, lab_records = read(lab_token, lab)
    # The city (public benefit) sees alice and bruno; the lab (research) sees alice and chloé.
    city_people = {r["subject_pseudonym"] for r in city_records}
    lab_people = {r["subject_pseudonym"] for r in lab_records}
    assert len(city_people) == 2
    assert len(lab_people) == 2
    assert city_people.isdisjoint(lab_people)
    assert len(city_records) == len(lab_records) == 40  # 20 trips each; synthetic travellers never consented
    assert "km" not in city_records[0]
    assert "departure" not in lab_records[0]
    # Neither reads the other's grant, even with its own valid token.
    assert read(city_token, lab)[0] == 404
    assert read(lab_token, city)[0] == 404


def test_a_demo_citizens_withdrawal_shows_on_the_very_next_read(credentials: dict[str, Any]) -> None:
    lab = next(g["id"] for g in credentials["grants"] if g["organisation"] == "labo-mobilites")
    token = grant_token(credentials, "labo-mobilites", lab)
    assert len(read(token, lab)[1]) == 40
    chloe = ConsentRecord.objects.get(
        citizen__username="chloe", holder__slug="ligne-bleue", purpose="dpv:NonCommercialResearch"
    )
    consent.consent_withdraw(citizen=chloe.citizen, record=chloe)
    assert len(read(token, lab)[1]) == 20
