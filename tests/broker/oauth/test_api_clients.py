"""Clients API: an organisation's admins register, rotate and disable its OAuth clients."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey
from rest_framework.test import APIClient

from broker.models import AuditBody, Membership
from broker.oauth.models import OAuthClient
from tests.broker.oauth.conftest import basic
from tests.conftest import client_for
from tests.factories import MembershipFactory

CLIENTS = "/api/v1/clients/"


def register(api: APIClient, **body: object) -> dict:  # type: ignore[type-arg]
    response = api.post(CLIENTS, {"name": "reporting", "auth_method": "client_secret_basic", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def test_an_admin_registers_a_secret_client_and_sees_the_secret_once(user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    api = client_for(user_admin)
    created = register(api)
    secret = created["client_secret"]
    assert secret.startswith("tcs_")
    assert len(secret) > 40
    stored = OAuthClient.objects.get(client_id=created["client_id"])
    assert stored.secret_hash.startswith("sha256$")
    assert secret not in stored.secret_hash
    assert stored.secret_hint == secret[:8]
    listed = api.get(CLIENTS).json()
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    assert "client_secret" not in listed[0]
    assert AuditBody.objects.filter(verb="client.registered", subject=f"organisation:{data_user.slug}").count() == 1
    assert secret not in str([bytes(b.canonical) for b in AuditBody.objects.all()])


def test_a_key_client_is_registered_with_public_keys_only(user_admin) -> None:  # type: ignore[no-untyped-def]
    api = client_for(user_admin)
    key = ECKey.generate_key("P-256", private=True)
    created = register(api, auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]})
    assert created["client_secret"] is None
    assert "d" not in created["jwks"]["keys"][0]
    refused = api.post(
        CLIENTS,
        {"name": "leaky", "auth_method": "private_key_jwt", "jwks": {"keys": [key.as_dict(private=True)]}},
        format="json",
    )
    assert refused.status_code == 422
    assert "public keys only" in refused.json()["detail"]


def test_rotating_a_secret_stops_the_old_one_at_once(api: APIClient, user_admin) -> None:  # type: ignore[no-untyped-def]
    admin = client_for(user_admin)
    created = register(admin)
    old = created["client_secret"]
    rotated = admin.post(f"{CLIENTS}{created['client_id']}/rotate", {}, format="json").json()
    new = rotated["client_secret"]
    assert new != old
    form = {"grant_type": "client_credentials"}
    assert api.post("/oauth/token", form, HTTP_AUTHORIZATION=basic(created["client_id"], old)).status_code == 401
    assert api.post("/oauth/token", form, HTTP_AUTHORIZATION=basic(created["client_id"], new)).status_code == 200


def test_disabling_a_client_is_recorded(user_admin) -> None:  # type: ignore[no-untyped-def]
    admin = client_for(user_admin)
    created = register(admin)
    disabled = admin.post(f"{CLIENTS}{created['client_id']}/disable").json()
    assert disabled["active"] is False
    assert AuditBody.objects.filter(verb="client.disabled").count() == 1


def test_another_organisations_admin_cannot_see_rotate_or_disable_a_client(user_admin, holder_admin) -> None:  # type: ignore[no-untyped-def]
    created = register(client_for(user_admin))
    intruder = client_for(holder_admin)
    assert created["client_id"] not in str(intruder.get(CLIENTS).json())
    for action in ("rotate", "disable"):
        response = intruder.post(f"{CLIENTS}{created['client_id']}/{action}", {}, format="json")
        assert response.status_code == 404
    assert OAuthClient.objects.get(client_id=created["client_id"]).is_active


@pytest.mark.parametrize("role", [Membership.Role.DATA_STEWARD, Membership.Role.REVIEWER])
def test_members_who_are_not_admins_cannot_register_clients(data_user, role) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(organisation=data_user, role=role).user
    response = client_for(member).post(CLIENTS, {"name": "x", "auth_method": "client_secret_basic"}, format="json")
    assert response.status_code == 403
    assert not OAuthClient.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "stranger"])
def test_citizens_and_strangers_have_no_clients_api(request, persona) -> None:  # type: ignore[no-untyped-def]
    api = client_for(request.getfixturevalue(persona))
    assert api.get(CLIENTS).status_code == 403
    assert api.post(CLIENTS, {"name": "x", "auth_method": "client_secret_basic"}, format="json").status_code == 403


def test_an_oauth_client_cannot_manage_clients(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    from tests.broker.oauth.conftest import token_of

    client, secret = secret_client
    token = token_of(api, client, secret)["access_token"]
    response = api.post(
        CLIENTS,
        {"name": "x", "auth_method": "client_secret_basic"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code in (401, 403)
    assert OAuthClient.objects.count() == 1


def test_unknown_scopes_are_refused_with_the_allowed_list(user_admin) -> None:  # type: ignore[no-untyped-def]
    response = client_for(user_admin).post(
        CLIENTS, {"name": "x", "auth_method": "client_secret_basic", "scopes": ["everything"]}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["allowed"] == [
        "access_requests",
        "consent_modules",
        "datasets",
        "decisions",
        "grants",
        "link_codes",
        "organisation",
        "webhooks",
    ]
