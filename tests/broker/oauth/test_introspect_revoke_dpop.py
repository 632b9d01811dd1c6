"""Introspection (RFC 7662), revocation (RFC 7009) and DPoP (RFC 9449)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from rest_framework.test import APIClient

from broker.models import AuditBody
from tests.broker.oauth.conftest import basic, claims_of, make_grant, register_secret_client, token_of


def introspect(api: APIClient, client: Any, secret: str, token: str) -> dict[str, Any]:
    response = api.post("/oauth/introspect", {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def test_introspection_says_active_then_inactive_after_revocation(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret)["access_token"]
    answer = introspect(api, client, secret, token)
    assert answer["active"] is True
    assert answer["client_id"] == client.client_id
    assert answer["scope"] == "organisation"
    assert answer["jti"] == claims_of(token)["jti"]
    revoked = api.post("/oauth/revoke", {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret))
    assert revoked.status_code == 200
    assert introspect(api, client, secret, token) == {"active": False}
    assert AuditBody.objects.filter(verb="token.revoked").count() == 1


def test_revoking_an_unknown_or_foreign_token_answers_200_and_changes_nothing(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, user_admin, data_user
) -> None:
    client, secret = secret_client
    other, other_secret = register_secret_client(user_admin, data_user, name="other")
    assert other_secret is not None
    token = token_of(api, client, secret)["access_token"]
    for presented in (token, "not-a-token"):
        response = api.post(
            "/oauth/revoke", {"token": presented}, HTTP_AUTHORIZATION=basic(other.client_id, other_secret)
        )
        assert response.status_code == 200
    assert introspect(api, client, secret, token)["active"] is True


def test_a_client_cannot_introspect_another_clients_token(
    api: APIClient, secret_client, key_client, user_admin, data_user
) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    other, other_secret = register_secret_client(user_admin, data_user, name="other")
    token = token_of(api, client, secret)["access_token"]
    assert introspect(api, other, other_secret, token) == {"active": False}


def test_a_holders_client_may_introspect_tokens_meant_for_its_api(  # type: ignore[no-untyped-def]
    api: APIClient, secret_client, holder, holder_admin, data_user, federated_dataset, hosted_dataset
) -> None:
    client, secret = secret_client
    holder_client, holder_secret = register_secret_client(holder_admin, holder, name="meters api")
    federated = make_grant(data_user, federated_dataset)
    token = token_of(api, client, secret, scope=f"grant:{federated.id}")["access_token"]
    answer = introspect(api, holder_client, holder_secret, token)
    assert answer["active"] is True
    assert answer["grant_id"] == str(federated.id)
    assert answer["aud"] == "https://api.volta.example"
    hosted = make_grant(data_user, hosted_dataset)
    token = token_of(api, client, secret, scope=f"grant:{hosted.id}")["access_token"]
    assert introspect(api, holder_client, holder_secret, token) == {"active": False}


def test_introspection_is_inactive_once_the_grant_is_revoked(api: APIClient, secret_client, grant) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret, scope=f"grant:{grant.id}")["access_token"]
    assert introspect(api, client, secret, token)["active"] is True
    grant.state = "revoked"
    grant.save()
    assert introspect(api, client, secret, token) == {"active": False}


def test_introspection_needs_client_authentication(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret)["access_token"]
    response = api.post("/oauth/introspect", {"token": token})
    assert response.status_code == 401


# --- DPoP -------------------------------------------------------------------------------------


@pytest.fixture
def holder_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def proof(
    key: ECKey, method: str, url: str, *, token: str | None = None, jti: str | None = None, iat: int | None = None
) -> str:
    claims: dict[str, Any] = {"jti": jti or uuid.uuid4().hex, "htm": method, "htu": url, "iat": iat or int(time.time())}
    if token:
        claims["ath"] = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    return jwt.encode(
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}, claims, key, algorithms=["ES256"]
    )


def dpop_token(api: APIClient, client: Any, secret: str, key: ECKey) -> str:
    response = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
        HTTP_DPOP=proof(key, "POST", "http://testserver/oauth/token"),
    )
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    return response.json()["access_token"]  # type: ignore[no-any-return]


ME = "http://testserver/api/v1/organisations/me"


def test_a_dpop_bound_token_works_with_a_fresh_proof_of_the_same_key(api: APIClient, secret_client, holder_key) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = dpop_token(api, client, secret, holder_key)
    assert claims_of(token)["cnf"]["jkt"] == holder_key.thumbprint()
    response = api.get(ME, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof(holder_key, "GET", ME, token=token))
    assert response.status_code == 200


def test_a_dpop_bound_token_sent_as_bearer_is_refused(api: APIClient, secret_client, holder_key) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = dpop_token(api, client, secret, holder_key)
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


@pytest.mark.parametrize("flaw", ["other-url", "other-method", "replayed", "stale", "other-key", "no-ath"])
def test_a_flawed_dpop_proof_is_refused(api: APIClient, secret_client, holder_key, flaw: str) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = dpop_token(api, client, secret, holder_key)
    good = proof(holder_key, "GET", ME, token=token)
    bad = {
        "other-url": proof(holder_key, "GET", "http://testserver/api/v1/audit/", token=token),
        "other-method": proof(holder_key, "POST", ME, token=token),
        "replayed": good,
        "stale": proof(holder_key, "GET", ME, token=token, iat=int(time.time()) - 600),
        "other-key": proof(ECKey.generate_key("P-256", private=True), "GET", ME, token=token),
        "no-ath": proof(holder_key, "GET", ME),
    }[flaw]
    if flaw == "replayed":
        assert api.get(ME, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=good).status_code == 200
    response = api.get(ME, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=bad)
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in response["WWW-Authenticate"]
    assert response["WWW-Authenticate"].startswith("DPoP ")


def test_a_dpop_proof_for_another_url_is_refused_at_the_token_endpoint(
    api: APIClient, secret_client, holder_key
) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    response = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
        HTTP_DPOP=proof(holder_key, "POST", "https://elsewhere.example/token"),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_client_registered_dpop_bound_must_send_a_proof(api: APIClient, user_admin, data_user, holder_key) -> None:  # type: ignore[no-untyped-def]
    client, secret = register_secret_client(user_admin, data_user, name="bound", dpop_bound_access_tokens=True)
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )
    assert response.json()["error"] == "invalid_dpop_proof"
    assert dpop_token(api, client, secret, holder_key)
