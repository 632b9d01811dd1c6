"""An independent OAuth client (authlib's requests client) gets tokens over real HTTP; PyJWT verifies them."""

from __future__ import annotations

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.broker.oauth.conftest import make_grant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _served_at_the_live_server(live_server, settings) -> None:  # type: ignore[no-untyped-def]
    """The issuer and every published URL are the live server's, as in a deployment."""
    settings.TIERS_BASE_URL = live_server.url


def verify_with_pyjwt(base: str, token: str) -> dict:  # type: ignore[type-arg]
    """What any resource server does: the JWKS alone, an explicit algorithm, the right audience and issuer."""
    jwks = jwt.PyJWKClient(f"{base}/oauth/jwks")
    key = jwks.get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=base, issuer=base)  # type: ignore[no-any-return]


def test_client_secret_basic_through_an_independent_client(live_server, secret_client, data_user) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    session = OAuth2Session(client.client_id, secret, token_endpoint_auth_method="client_secret_basic")
    token = session.fetch_token(f"{live_server.url}/oauth/token", grant_type="client_credentials")
    claims = verify_with_pyjwt(live_server.url, token["access_token"])
    assert claims["client_id"] == client.client_id
    me = session.get(f"{live_server.url}/api/v1/organisations/me")
    assert me.status_code == 200
    assert me.json()["slug"] == data_user.slug


def test_private_key_jwt_through_an_independent_client(
    live_server, key_client, client_key, data_user, hosted_dataset
) -> None:  # type: ignore[no-untyped-def]
    grant = make_grant(data_user, hosted_dataset)
    token_url = f"{live_server.url}/oauth/token"
    session = OAuth2Session(
        key_client.client_id,
        client_key,
        token_endpoint_auth_method="private_key_jwt",
        scope=f"grant:{grant.id}",
    )
    session.register_client_auth_method(PrivateKeyJWT(token_url, alg="ES256", headers={"kid": client_key.kid}))
    token = session.fetch_token(token_url, grant_type="client_credentials")
    claims = verify_with_pyjwt(live_server.url, token["access_token"])
    assert claims["grant_id"] == str(grant.id)
    assert claims["purpose"] == grant.purpose


def test_introspection_and_revocation_through_an_independent_client(live_server, secret_client) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    session = OAuth2Session(client.client_id, secret, token_endpoint_auth_method="client_secret_basic")
    token = session.fetch_token(f"{live_server.url}/oauth/token", grant_type="client_credentials")["access_token"]
    introspect = f"{live_server.url}/oauth/introspect"
    assert session.introspect_token(introspect, token=token).json()["active"] is True
    assert session.revoke_token(f"{live_server.url}/oauth/revoke", token=token).status_code == 200
    assert session.introspect_token(introspect, token=token).json() == {"active": False}
    refused = requests.get(
        f"{live_server.url}/api/v1/organisations/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
