"""The demo's seed: idempotent, and every login it writes works."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client

from broker.models import Membership, Organisation, User


@pytest.fixture
def credentials_file(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    return settings.DEMO_CREDENTIALS_FILE


@pytest.mark.django_db
def test_seed_writes_a_working_login_for_every_demo_user(credentials_file) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    credentials = json.loads(credentials_file.read_text())
    assert credentials["base_url"] == "http://testserver"
    assert len(credentials["clients"]) == 8
    assert {(g["organisation"], g["dataset"]) for g in credentials["grants"]} == {
        ("ville-de-marlieux", "ligne-bleue/trips"),
        ("labo-mobilites", "ligne-bleue/trips"),
    }
    roles = [user["role"] for user in credentials["users"]]
    assert roles.count("operator") == 1
    assert roles.count("org_admin") == 4
    assert roles.count("citizen") >= 3
    for user in credentials["users"]:
        client = Client()
        assert client.login(username=user["username"], password=user["password"]), user["username"]
        if user["role"] == "org_admin":
            organisation = Organisation.objects.get(slug=user["organisation"])
            assert Membership.objects.get(user__username=user["username"]).organisation == organisation
            assert client.get(f"/org/{organisation.slug}/").status_code == 200
        if user["role"] == "citizen":
            assert client.get("/me/").status_code == 200


@pytest.mark.django_db
def test_seed_creates_the_demo_organisations_verified(credentials_file) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    kinds = sorted(Organisation.objects.values_list("kind", flat=True))
    assert kinds == ["holder", "holder", "user", "user"]
    assert Organisation.objects.filter(verification_state="verified").count() == 4


@pytest.mark.django_db
def test_seeding_twice_changes_nothing_and_keeps_passwords(credentials_file) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    first = json.loads(credentials_file.read_text())
    counts = (User.objects.count(), Organisation.objects.count(), Membership.objects.count())
    call_command("seed_demo")
    assert json.loads(credentials_file.read_text()) == first
    assert (User.objects.count(), Organisation.objects.count(), Membership.objects.count()) == counts


@pytest.mark.django_db
def test_credentials_file_is_readable_by_its_owner_only(credentials_file) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    assert credentials_file.stat().st_mode & 0o077 == 0


@pytest.mark.django_db
def test_every_demo_client_gets_a_token_with_the_credentials_file_alone(credentials_file) -> None:  # type: ignore[no-untyped-def]
    import base64
    import time
    import uuid

    from joserfc import jwt
    from joserfc.jwk import ECKey
    from rest_framework.test import APIClient

    call_command("seed_demo")
    clients = json.loads(credentials_file.read_text())["clients"]
    assert len(clients) == 8
    assert {c["auth_method"] for c in clients} == {"client_secret_basic", "private_key_jwt"}
    api = APIClient()
    for entry in clients:
        form = {"grant_type": "client_credentials"}
        headers = {}
        if entry["auth_method"] == "client_secret_basic":
            pair = f"{entry['client_id']}:{entry['client_secret']}".encode()
            headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(pair).decode()
        else:
            assert entry["private_jwk"]["alg"] == "ES256"
            key = ECKey.import_key(entry["private_jwk"])
            now = int(time.time())
            claims = {"iss": entry["client_id"], "sub": entry["client_id"], "aud": "http://testserver/oauth/token"}
            claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
        response = api.post("/oauth/token", form, **headers)
        assert response.status_code == 200, (entry["client_id"], response.content)
        me = api.get("/api/v1/organisations/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
        assert me.json()["slug"] == entry["organisation"]


@pytest.mark.django_db
def test_demo_citizens_are_linked_and_hold_given_paused_and_withdrawn_consents(credentials_file) -> None:  # type: ignore[no-untyped-def]
    from consent.models import ConsentRecord, IdentityLink

    call_command("seed_demo")
    call_command("seed_demo")
    citizens = [u["username"] for u in json.loads(credentials_file.read_text())["users"] if u["role"] == "citizen"]
    first = User.objects.get(username=citizens[0])
    assert ConsentRecord.objects.filter(citizen=first, state="given").count() >= 3
    assert IdentityLink.objects.filter(citizen=first, unlinked_at__isnull=True).count() == 2
    for username in citizens[1:]:
        states = set(ConsentRecord.objects.filter(citizen__username=username).values_list("state", flat=True))
        assert {"paused", "withdrawn"} <= states
    assert ConsentRecord.objects.count() == 10  # the second run added nothing
