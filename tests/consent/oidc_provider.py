"""A small but real OpenID Connect provider for the tests, served over HTTP on 127.0.0.1 from a thread.

Authorization code flow with PKCE (S256 only), a discovery document, a JWKS and a token endpoint that
returns an ID token signed ES256 with joserfc. Its authorize endpoint approves one fixed user at once,
whose session at the provider began at `logged_in_at`: `prompt=login`, or a `max_age` that session is older
than, logs them in anew, and the ID token's `auth_time` says when. Set `misbehaviour` to make it answer
wrongly, the way a broken or hostile provider would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

KEY_ID = "provider-2026"
MISBEHAVIOURS = (
    "deny",  # the authorize endpoint answers access_denied
    "wrong_nonce",
    "no_nonce",
    "foreign_key",  # signed by another key under the provider's key id
    "unknown_key",  # signed by a key the JWKS does not list
    "wrong_audience",
    "wrong_issuer",
    "expired",
    "no_id_token",
    "no_auth_time",
    "ignores_prompt",  # keeps the session it has, whatever prompt and max_age ask
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class OidcTestProvider:
    """The provider; `start()` serves it, `stop()` ends it, `reset()` forgets a test's changes."""

    client_id = "tiers-test"

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": KEY_ID, "use": "sig", "alg": "ES256"})
        self.client_secret = secrets.token_urlsafe(24)
        self.issuer = ""
        self._server: WSGIServer | None = None
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.user: dict[str, Any] = {
            "sub": "8f14e45f-camille",
            "email": "camille@example.org",
            "email_verified": True,
            "given_name": "Camille",
            "family_name": "Martin",
        }
        self.misbehaviour: str | None = None
        self.logged_in_at = int(time.time()) - 3600  # the browser has had a session here for an hour
        self.authorize_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, str]] = {}

    # --- serving ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._server = make_server("127.0.0.1", 0, self, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def settings_entry(self, name: str, label: str = "Test provider") -> dict[str, Any]:
        """How Tiers' settings name this provider (TIERS_OIDC_PROVIDERS, defaults filled in)."""
        return {
            "name": name,
            "label": label,
            "server_metadata_url": f"{self.issuer}/.well-known/openid-configuration",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "openid email profile",
            "authorize_params": {},
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        routes = {
            "/.well-known/openid-configuration": self._discovery,
            "/authorize": self._authorize,
            "/token": self._token,
            "/jwks": self._jwks,
        }
        route = routes.get(environ["PATH_INFO"])
        if route is None:
            return _answer(start_response, "404 Not Found", {"error": "not_found"})
        return route(environ, start_response)

    # --- endpoints ---------------------------------------------------------------------------------

    def _discovery(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return _answer(
            start_response,
            "200 OK",
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", "profile"],
            },
        )

    def _jwks(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return _answer(start_response, "200 OK", KeySet([self.key]).as_dict(private=False))

    def _authorize(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        params = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.authorize_requests.append(params)
        problem = _authorize_problem(params, self.client_id)
        if problem:  # no redirect to an unchecked address: the error is shown here, as providers do
            return _answer(
                start_response, "400 Bad Request", {"error": "invalid_request", "error_description": problem}
            )
        if self.misbehaviour == "deny":
            answer = {"error": "access_denied", "error_description": "Call +00 000 to unlock", "state": params["state"]}
        else:
            self._authenticate(params)
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = {**params, "auth_time": str(self.logged_in_at)}
            answer = {"code": code, "state": params["state"]}
        start_response("302 Found", [("Location", f"{params['redirect_uri']}?{urlencode(answer)}")])
        return [b""]

    def _authenticate(self, params: dict[str, str]) -> None:
        """Log the user in anew when the request asks for it; otherwise the session here answers silently."""
        now = int(time.time())
        max_age = params.get("max_age")
        if self.misbehaviour != "ignores_prompt" and (
            "login" in params.get("prompt", "").split() or (max_age and now - self.logged_in_at >= int(max_age))
        ):
            self.logged_in_at = now

    def _token(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = {key: values[0] for key, values in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
        if not self._client_authenticated(environ, form):
            return _answer(start_response, "401 Unauthorized", {"error": "invalid_client"})
        with self._lock:
            request = self._codes.pop(form.get("code", ""), None)  # a code works once
        if (
            form.get("grant_type") != "authorization_code"
            or request is None
            or form.get("redirect_uri") != request["redirect_uri"]
            or _b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) != request["code_challenge"]
        ):
            return _answer(start_response, "400 Bad Request", {"error": "invalid_grant"})
        access_token = secrets.token_urlsafe(32)
        token: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        if self.misbehaviour != "no_id_token":
            token["id_token"] = self._id_token(request, access_token)
        return _answer(start_response, "200 OK", token)

    def _client_authenticated(self, environ: dict[str, Any], form: dict[str, str]) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def _id_token(self, request: dict[str, str], access_token: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            **self.user,
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": int(request["auth_time"]),
            "nonce": request["nonce"],
            "at_hash": _b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
        }
        key = self.key
        if self.misbehaviour == "wrong_nonce":
            claims["nonce"] = "a-nonce-from-another-login"
        elif self.misbehaviour == "no_nonce":
            del claims["nonce"]
        elif self.misbehaviour == "foreign_key":
            key = ECKey.generate_key("P-256", parameters={"kid": KEY_ID})
        elif self.misbehaviour == "unknown_key":
            key = ECKey.generate_key("P-256", parameters={"kid": "not-published"})
        elif self.misbehaviour == "wrong_audience":
            claims["aud"] = "another-client"
        elif self.misbehaviour == "wrong_issuer":
            claims["iss"] = "https://impostor.example"
        elif self.misbehaviour == "expired":
            claims["iat"], claims["exp"], claims["auth_time"] = now - 7200, now - 3600, now - 7200
        elif self.misbehaviour == "no_auth_time":
            del claims["auth_time"]
        return jwt.encode({"alg": "ES256", "kid": key.kid or KEY_ID, "typ": "JWT"}, claims, key)


def _authorize_problem(params: dict[str, str], client_id: str) -> str:
    """What is wrong with an authorization request, or an empty string."""
    if params.get("client_id") != client_id:
        return "unknown client_id"
    if params.get("response_type") != "code":
        return "only the code flow"
    if "openid" not in params.get("scope", "").split():
        return "scope must include openid"
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        return "PKCE with S256 is required"
    if not params.get("redirect_uri", "").startswith("http://testserver/accounts/oidc/"):
        return "redirect_uri not registered"
    for required in ("state", "nonce"):
        if not params.get(required):
            return f"{required} is required"
    return ""


def _answer(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    content = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(content)))])
    return [content]
