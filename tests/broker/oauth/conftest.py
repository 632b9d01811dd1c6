"""OAuth fixtures: clients of both kinds, a grant, and helpers to forge what attackers would."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from typing import Any

import pytest
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.models import Organisation, User
from broker.oauth import services
from broker.oauth.models import OAuthClient
from sharing.models import Dataset, Grant

TOKEN_URL = "http://testserver/oauth/token"


@pytest.fixture
def client_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "client-key-1", "alg": "ES256"}, private=True)


def register_secret_client(
    admin: User,
    organisation: Organisation,
    *,
    name: str = "other",
    scopes: tuple[str, ...] = ("organisation",),
    **extra: Any,
) -> tuple[OAuthClient, str]:
    """A client_secret_basic client of the organisation, with its secret."""
    client, secret = services.client_register(
        actor=admin,
        organisation=organisation,
        name=name,
        auth_method="client_secret_basic",
        scopes=list(scopes),
        **extra,
    )
    assert secret is not None
    return client, secret


@pytest.fixture
def secret_client(user_admin: User, data_user: Organisation) -> tuple[OAuthClient, str]:
    return register_secret_client(user_admin, data_user, name="city reporting", scopes=("organisation", "grants"))


@pytest.fixture
def key_client(user_admin: User, data_user: Organisation, client_key: ECKey) -> OAuthClient:
    client, _ = services.client_register(
        actor=user_admin,
        organisation=data_user,
        name="city batch",
        auth_method="private_key_jwt",
        scopes=["organisation", "grants"],
        jwks={"keys": [client_key.as_dict(private=False)]},
    )
    return client


@pytest.fixture
def hosted_dataset(holder: Organisation) -> Dataset:
    return Dataset.objects.create(holder=holder, slug="trips", title="Trips", mode="hosted")


@pytest.fixture
def federated_dataset(holder: Organisation) -> Dataset:
    return Dataset.objects.create(
        holder=holder, slug="meters", title="Meters", mode="federated", api_base_url="https://api.volta.example"
    )


def make_grant(organisation: Organisation, dataset: Dataset, **overrides: Any) -> Grant:
    values: dict[str, Any] = {
        "organisation": organisation,
        "dataset": dataset,
        "purpose": "dpv:ScientificResearch",
        "ends_at": timezone.now() + datetime.timedelta(days=30),
        **overrides,
    }
    return Grant.objects.create(**values)


@pytest.fixture
def grant(data_user: Organisation, hosted_dataset: Dataset) -> Grant:
    return make_grant(data_user, hosted_dataset)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assertion(client_id: str, key: ECKey, *, audience: str = TOKEN_URL, jti: str | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def token_of(api: Any, client: OAuthClient, secret: str, **form: str) -> dict[str, Any]:
    response = api.post(
        "/oauth/token", {"grant_type": "client_credentials", **form}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))  # type: ignore[no-any-return]
