"""The resource check every protected API uses: a DRF authentication class.

It resolves the calling organisation once per request from a live access token:
signature and claims (checked once per token and process), DPoP binding, then
the token, its client and its grant against the database, so that a revocation
takes effect on the next request.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from broker.oauth import dpop, tokens
from broker.oauth.tokens import Caller, ClientPrincipal, InvalidToken

security_log = logging.getLogger("tiers.security")


class TokenRefused(exceptions.AuthenticationFailed):
    """401 with the WWW-Authenticate challenge RFC 6750 §3 (or RFC 9449 §7.1) asks for."""

    def __init__(self, scheme: str, error: str, description: str) -> None:
        super().__init__(description)
        self.www_authenticate = f'{scheme} realm="tiers", error="{error}", error_description="{description}"'


class AccessTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ClientPrincipal, Caller] | None:
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        scheme = scheme.lower()
        if scheme not in ("bearer", "dpop") or not token:
            return None
        challenge = "DPoP" if scheme == "dpop" else "Bearer"
        try:
            claims = tokens.verify(token.strip(), audience=tokens.tiers_audience())
            self._check_binding(request, scheme, token.strip(), claims)
            caller = tokens.live_caller(claims)
        except InvalidToken as exc:
            security_log.warning("access token refused: %s", exc.reason, extra={"path": request.path})
            raise TokenRefused(challenge, exc.error, "The access token is not valid.") from exc
        return ClientPrincipal(caller), caller

    def _check_binding(self, request: Request, scheme: str, token: str, claims: dict[str, Any]) -> None:
        jkt = (claims.get("cnf") or {}).get("jkt")
        if not jkt:
            if scheme == "dpop":
                raise InvalidToken("DPoP scheme with a bearer token")
            return
        if scheme != "dpop":
            raise InvalidToken("a DPoP-bound token sent as a bearer token")
        proof = request.headers.get("DPoP", "")
        url = settings.TIERS_BASE_URL + request.path
        try:
            if dpop.verify_proof(proof, method=request.method or "GET", url=url, access_token=token) != jkt:
                raise InvalidToken("DPoP proof signed by another key", error="invalid_dpop_proof")
        except dpop.InvalidProof as exc:
            raise InvalidToken(str(exc), error="invalid_dpop_proof") from exc

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tiers"'


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the resource check: OAuth 2.0 client credentials."""

    target_class = AccessTokenAuthentication
    name = "oauth2"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "oauth2",
            "description": "RFC 9068 JWT access tokens, as Bearer or DPoP (RFC 9449).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token",
                    "scopes": {"organisation": "the organisation's own record", "grant:<id>": "one grant's data"},
                }
            },
        }
