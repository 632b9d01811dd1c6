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
    assert credentials["clients"] == []
    assert credentials["grants"] == []
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
