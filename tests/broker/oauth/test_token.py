"""The token endpoint: client credentials only, both auth methods, grant binding, errors."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from broker.models import AuditBody
from broker.oauth.models import IssuedToken
from tests.broker.oauth.conftest import assertion, basic, claims_of, make_grant, token_of


def test_a_secret_client_gets_an_rfc_9068_token(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 60 <= body["expires_in"] <= 900
    assert "refresh_token" not in body
    header = json.loads(__import__("base64").urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    claims = claims_of(body["access_token"])
    assert claims["iss"] == claims["aud"] == "http://testserver"
    assert claims["sub"] == claims["client_id"] == client.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["scope"] == "organisation"
    assert {"jti", "iat", "exp"} <= claims.keys()


def test_every_token_issued_is_recorded_and_audited_without_the_token(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret)["access_token"]
    jti = claims_of(token)["jti"]
    assert IssuedToken.objects.get(jti=jti).client == client
    body = AuditBody.objects.get(verb="token.issued")
    event = json.loads(bytes(body.canonical))
    assert event["details"]["jti"] == jti
    assert event["actor"] == f"client:{client.client_id}"
    assert token not in bytes(body.canonical).decode()


def test_a_key_client_gets_a_token_with_a_signed_assertion(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    for audience in ("http://testserver/oauth/token", "http://testserver"):
        response = api.post(
            "/oauth/token",
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion(key_client.client_id, client_key, audience=audience),
            },
        )
        assert response.status_code == 200, response.content


def test_a_replayed_client_assertion_is_refused(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key_client.client_id, client_key, jti="once"),
    }
    assert api.post("/oauth/token", form).status_code == 200
    replay = api.post("/oauth/token", form)
    assert replay.status_code in (400, 401)
    assert replay.json()["error"] == "invalid_client"


def test_an_assertion_for_another_audience_is_refused(api: APIClient, key_client, client_key) -> None:  # type: ignore[no-untyped-def]
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key_client.client_id, client_key, audience="https://elsewhere.example/token"),
    }
    assert api.post("/oauth/token", form).json()["error"] == "invalid_client"


def test_a_wrong_secret_is_refused(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = secret_client
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, "tcs_nope")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "authorization_code", "refresh_token"])
def test_only_client_credentials_is_granted(api: APIClient, secret_client, grant_type: str) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    response = api.post(
        "/oauth/token",
        {"grant_type": grant_type, "username": "a", "password": "b"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_client_cannot_use_the_method_it_was_not_registered_with(api: APIClient, key_client) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(key_client.client_id, "x")
    )
    assert response.json()["error"] == "invalid_client"


def test_a_disabled_client_gets_no_token(api: APIClient, secret_client, user_admin) -> None:  # type: ignore[no-untyped-def]
    from broker.oauth import services

    client, secret = secret_client
    services.client_disable(actor=user_admin, client=client)
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("form", ["details", "scope"])
def test_a_token_is_bound_to_a_grant_by_either_form(api: APIClient, secret_client, grant, form: str) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    request = (
        {"authorization_details": json.dumps([{"type": "tiers_grant", "grant_id": str(grant.id)}])}
        if form == "details"
        else {"scope": f"grant:{grant.id}"}
    )
    body = token_of(api, client, secret, **request)
    claims = claims_of(body["access_token"])
    assert claims["grant_id"] == str(grant.id)
    assert claims["purpose"] == "dpv:ScientificResearch"
    assert claims["aud"] == "http://testserver"
    assert claims["authorization_details"] == [
        {"type": "tiers_grant", "grant_id": str(grant.id), "purpose": "dpv:ScientificResearch"}
    ]
    assert f"grant:{grant.id}" in claims["scope"].split()


def test_a_federated_grant_token_is_for_the_holders_api(
    api: APIClient, secret_client, data_user, federated_dataset
) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    grant = make_grant(data_user, federated_dataset)
    claims = claims_of(token_of(api, client, secret, scope=f"grant:{grant.id}")["access_token"])
    assert claims["aud"] == "https://api.volta.example"
    other = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": f"grant:{grant.id}", "resource": "http://testserver"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert other.json()["error"] == "invalid_target"


def test_a_grant_of_another_organisation_is_refused(api: APIClient, secret_client, holder, hosted_dataset) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    foreign = make_grant(holder, hosted_dataset)
    response = api.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "authorization_details": json.dumps([{"type": "tiers_grant", "grant_id": str(foreign.id)}]),
        },
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_authorization_details"


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_an_inactive_grant_is_refused(api: APIClient, secret_client, grant, state: str) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    grant.state = state
    grant.save()
    response = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": f"grant:{grant.id}"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.json()["error"] == "invalid_authorization_details"


@pytest.mark.parametrize(
    "details",
    ["not json", "{}", "[]", '[{"type": "other", "grant_id": "x"}]', '[{"type": "tiers_grant", "grant_id": 7}]'],
)
def test_malformed_authorization_details_are_refused(api: APIClient, secret_client, details: str) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    response = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "authorization_details": details},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_authorization_details"


def test_a_scope_the_client_was_not_given_is_refused(api: APIClient, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    response = api.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "admin"},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    assert response.json()["error"] == "invalid_scope"


def test_the_token_endpoint_limits_each_client(api: APIClient, secret_client, settings, still_clock) -> None:  # type: ignore[no-untyped-def]
    settings.OAUTH_TOKEN_RATE_PER_CLIENT = 3
    client, secret = secret_client
    statuses = [
        api.post(
            "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_metadata_lists_every_endpoint_and_method(api: APIClient) -> None:
    metadata = api.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == "http://testserver"
    assert metadata["token_endpoint"] == "http://testserver/oauth/token"
    assert metadata["jwks_uri"] == "http://testserver/oauth/jwks"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "private_key_jwt"}
    assert metadata["authorization_details_types_supported"] == ["tiers_grant"]
    assert {"introspection_endpoint", "revocation_endpoint", "dpop_signing_alg_values_supported"} <= metadata.keys()


def test_expired_token_records_and_assertions_are_purged_and_the_rest_kept(
    api: APIClient, key_client, client_key
) -> None:  # type: ignore[no-untyped-def]
    import datetime

    from django.utils import timezone

    from broker.oauth import services
    from broker.oauth.models import UsedAssertion

    for _ in range(2):
        api.post(
            "/oauth/token",
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion(key_client.client_id, client_key),
            },
        )
    old, recent = IssuedToken.objects.order_by("pk")
    IssuedToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - datetime.timedelta(days=2))
    UsedAssertion.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert services.tokens_purge_expired() == 1
    assert services.tokens_purge_expired() == 0
    assert list(IssuedToken.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not UsedAssertion.objects.exists()
    assert AuditBody.objects.filter(verb="token.issued").count() == 2


@pytest.mark.parametrize("lifetime", [7200, 10**11])
def test_a_long_lived_client_assertion_is_refused_cleanly(
    api: APIClient, key_client, client_key, lifetime: int
) -> None:  # type: ignore[no-untyped-def]
    import time
    import uuid

    from joserfc import jwt

    now = int(time.time())
    claims = {"iss": key_client.client_id, "sub": key_client.client_id, "aud": "http://testserver/oauth/token"}
    claims |= {"iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    signed = jwt.encode({"alg": "ES256", "kid": client_key.kid}, claims, client_key, algorithms=["ES256"])
    response = api.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_requests_claiming_a_client_from_another_address_do_not_starve_it(
    api: APIClient, secret_client, settings, still_clock
) -> None:  # type: ignore[no-untyped-def]
    settings.OAUTH_TOKEN_RATE_PER_CLIENT = 2
    client, secret = secret_client
    for _ in range(3):
        api.post(
            "/oauth/token",
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(client.client_id, "tcs_guess"),
            REMOTE_ADDR="203.0.113.9",
        )
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )
    assert response.status_code == 200
