"""The clients page: admins register, see a secret once, rotate and disable; others cannot."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from broker.models import Membership
from broker.oauth.models import OAuthClient
from tests.factories import MembershipFactory


def logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_registers_a_client_and_sees_its_secret_once(user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(user_admin)
    url = f"/org/{data_user.slug}/clients/"
    response = page.post(url, {"name": "reports", "auth_method": "client_secret_basic", "scopes": ["organisation"]})
    assert response.status_code == 200
    secret = re.search(r"tcs_[A-Za-z0-9_-]+", response.content.decode())
    assert secret is not None
    client = OAuthClient.objects.get(name="reports")
    assert client.check_client_secret(secret.group(0))
    again = page.get(url).content.decode()
    assert client.client_id in again
    assert secret.group(0) not in again


def test_a_bad_jwks_gets_a_helpful_message_and_registers_nothing(user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(user_admin).post(
        f"/org/{data_user.slug}/clients/",
        {"name": "keys", "auth_method": "private_key_jwt", "scopes": ["organisation"], "jwks": "{not json"},
    )
    assert response.status_code == 200
    assert "This is not JSON" in response.content.decode()
    assert not OAuthClient.objects.exists()


def test_rotating_shows_a_new_secret_and_disabling_is_one_click(user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    page = logged_in(user_admin)
    page.post(
        f"/org/{data_user.slug}/clients/",
        {"name": "r", "auth_method": "client_secret_basic", "scopes": ["organisation"]},
    )
    client = OAuthClient.objects.get()
    old_hash = client.secret_hash
    rotated = page.post(f"/org/{data_user.slug}/clients/{client.client_id}/rotate")
    assert re.search(r"tcs_[A-Za-z0-9_-]+", rotated.content.decode())
    client.refresh_from_db()
    assert client.secret_hash != old_hash
    page.post(f"/org/{data_user.slug}/clients/{client.client_id}/disable")
    client.refresh_from_db()
    assert client.disabled_at is not None


def test_a_steward_sees_clients_but_cannot_register(data_user) -> None:  # type: ignore[no-untyped-def]
    steward = MembershipFactory(organisation=data_user, role=Membership.Role.DATA_STEWARD).user
    page = logged_in(steward)
    assert "Register a client" not in page.get(f"/org/{data_user.slug}/clients/").content.decode()
    page.post(
        f"/org/{data_user.slug}/clients/",
        {"name": "x", "auth_method": "client_secret_basic", "scopes": ["organisation"]},
    )
    assert not OAuthClient.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "stranger", "holder_admin"])
def test_outsiders_cannot_reach_an_organisations_clients(request, persona, user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    logged_in(user_admin).post(
        f"/org/{data_user.slug}/clients/",
        {"name": "r", "auth_method": "client_secret_basic", "scopes": ["organisation"]},
    )
    client = OAuthClient.objects.get()
    page = logged_in(request.getfixturevalue(persona))
    assert page.get(f"/org/{data_user.slug}/clients/").status_code == 404
    assert page.post(f"/org/{data_user.slug}/clients/{client.client_id}/disable").status_code == 404
    client.refresh_from_db()
    assert client.disabled_at is None


def test_every_client_form_is_csrf_protected(user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    page = Client(enforce_csrf_checks=True)
    page.force_login(user_admin)
    response = page.post(f"/org/{data_user.slug}/clients/", {"name": "r", "auth_method": "client_secret_basic"})
    assert response.status_code == 403
    assert not OAuthClient.objects.exists()
