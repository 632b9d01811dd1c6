"""The OAuth endpoints: token, introspection, revocation and the server's metadata (RFC 8414)."""

from __future__ import annotations

import base64
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from broker import ratelimit
from broker.oauth import server as oauth
from broker.oauth.services import SCOPES
from broker.oauth.tokens import issuer

security_log = logging.getLogger("tiers.security")


def _too_many(request: HttpRequest, what: str) -> HttpResponse:
    security_log.warning("token endpoint rate limit hit: %s", what)
    response = JsonResponse({"error": "slow_down", "error_description": "Too many token requests."}, status=429)
    response["Retry-After"] = "60"
    response["Cache-Control"] = "no-store"
    return response


def _client_id_hint(request: HttpRequest) -> str | None:
    """The client the request claims to be, for the per-client limit (authentication comes after)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeError):
            return None
    assertion = request.POST.get("client_assertion", "")
    if assertion.count(".") == 2:
        try:
            payload = assertion.split(".")[1]
            return str(json.loads(base64.urlsafe_b64decode(payload + "==")).get("sub"))
        except (ValueError, UnicodeError, AttributeError):
            return None
    return None


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """RFC 6749 §4.4: client credentials in, an RFC 9068 access token out."""
    address = request.META.get("REMOTE_ADDR", "unknown")
    client_id = _client_id_hint(request)
    limits = [(f"token-addr:{address}", settings.OAUTH_TOKEN_RATE_PER_ADDRESS, 60)]
    if client_id:
        # Counted per claimed client *and* address: client ids are public (the transparency log
        # names them), so a per-client count before authentication would let anyone starve a client.
        limits.append((f"token-client:{client_id}:{address}", settings.OAUTH_TOKEN_RATE_PER_CLIENT, 60))
    if not ratelimit.allow_all(*limits):
        return _too_many(request, f"address {address}, client {client_id}")
    response: HttpResponse = oauth.server.create_token_response(request)
    response["Cache-Control"] = "no-store"
    if response.status_code >= 400:
        security_log.warning("token request refused: %s", response.content[:300].decode(errors="replace"))
    return response


def _endpoint(name: str, request: HttpRequest) -> HttpResponse:
    response: HttpResponse = oauth.server.create_endpoint_response(name, request)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_POST
def introspect(request: HttpRequest) -> HttpResponse:
    """RFC 7662."""
    return _endpoint("introspection", request)


@csrf_exempt
@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    """RFC 7009."""
    return _endpoint("revocation", request)


@require_GET
@cache_control(public=True, max_age=300)
def metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414: everything a client needs to know to talk to this server."""
    base = settings.TIERS_BASE_URL
    auth_methods = ["client_secret_basic", "private_key_jwt"]
    signing = ["ES256", "EdDSA", "RS256", "PS256"]
    return JsonResponse(
        {
            "issuer": issuer(),
            "token_endpoint": f"{base}/oauth/token",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "jwks_uri": f"{base}/oauth/jwks",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": signing,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": signing,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": signing,
            "scopes_supported": [*(s for s in SCOPES if s != "grants"), "grant:<id>"],
            "authorization_details_types_supported": [oauth.GRANT_TYPE],
            "dpop_signing_alg_values_supported": signing,
            "access_token_signing_alg_values_supported": ["ES256"],
            "service_documentation": f"{base}/api/docs/",
        }
    )
