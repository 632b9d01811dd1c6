"""Demo data of the trust core that seed_demo writes: each organisation's OAuth clients, the admins' second factor."""

from __future__ import annotations

from typing import Any

import pyotp
from joserfc.jwk import ECKey

from broker.models import Organisation, User
from broker.oauth import services as oauth
from broker.oauth.models import OAuthClient
from broker.security import totp

SECRET_CLIENT_NAME = "demo client (client_secret_basic)"  # noqa: S105 (a name)
KEY_CLIENT_NAME = "demo client (private_key_jwt)"
SCOPES = ["organisation", "grants", "link_codes", "consent_modules", "datasets", "access_requests", "decisions"]


def demo_clients(organisation: Organisation, admin: User, known: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One client of each authentication method; credentials of an earlier run are kept when still valid."""
    return [_secret_client(organisation, admin, known), _key_client(organisation, admin, known)]


def totp_secret(user: User, known: dict[str, str]) -> str:
    """An enrolled authenticator for a demo admin; the secret of an earlier run is kept, so its app keeps working."""
    secret = known.get(user.username) or pyotp.random_base32()
    totp.device_install(actor=None, user=user, secret=secret)
    return secret


def _secret_client(organisation: Organisation, admin: User, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    client = organisation.oauth_clients.filter(name=SECRET_CLIENT_NAME, disabled_at__isnull=True).first()
    secret = (known.get(client.client_id) or {}).get("client_secret") if client else None
    if client is None:
        client, secret = oauth.client_register(
            actor=admin,
            organisation=organisation,
            name=SECRET_CLIENT_NAME,
            auth_method="client_secret_basic",
            scopes=SCOPES,
        )
    elif not secret or not client.check_client_secret(secret):
        client, secret = oauth.client_rotate_credentials(actor=admin, client=client)
    return {
        "organisation": organisation.slug,
        "client_id": client.client_id,
        "auth_method": OAuthClient.AuthMethod.CLIENT_SECRET_BASIC.value,
        "client_secret": secret,
    }


def _key_client(organisation: Organisation, admin: User, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    client = organisation.oauth_clients.filter(name=KEY_CLIENT_NAME, disabled_at__isnull=True).first()
    private_jwk = (known.get(client.client_id) or {}).get("private_jwk") if client else None
    registered = {key.get("kid") for key in ((client.jwks or {}).get("keys", []) if client else [])}
    if client is None or not private_jwk or private_jwk.get("kid") not in registered:
        key = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, private=True)
        key.ensure_kid()
        private_jwk = key.as_dict(private=True)
        public = {"keys": [key.as_dict(private=False)]}
        if client is None:
            client, _ = oauth.client_register(
                actor=admin,
                organisation=organisation,
                name=KEY_CLIENT_NAME,
                auth_method="private_key_jwt",
                scopes=SCOPES,
                jwks=public,
            )
        else:
            client, _ = oauth.client_rotate_credentials(actor=admin, client=client, jwks=public)
    return {
        "organisation": organisation.slug,
        "client_id": client.client_id,
        "auth_method": OAuthClient.AuthMethod.PRIVATE_KEY_JWT.value,
        "private_jwk": private_jwk,
    }
