"""The authorization server: authlib's, with client credentials as its only grant.

authlib parses the token request, authenticates the client (client_secret_basic,
or private_key_jwt per RFC 7523) and shapes the OAuth error responses; Tiers
decides what the token is bound to and signs it (RFC 9068, RFC 9396, RFC 9449).
"""

from __future__ import annotations

import datetime
import json
import logging
from contextvars import ContextVar
from typing import Any

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from django.conf import settings
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker.api_base import uuid_or_none
from broker.oauth import clients, dpop, services, tokens
from broker.oauth.models import IssuedToken, OAuthClient, UsedAssertion
from sharing.models import Dataset, Grant

security_log = logging.getLogger("tiers.security")
ASSERTION_ALGORITHMS = ["ES256", "EdDSA", "RS256", "PS256"]
# Assertions' jti are remembered until they expire, so their lifetime is bounded; an hour (and
# a minute of clock skew) is what common clients, authlib's among them, ask for.
MAX_ASSERTION_SECONDS = 3660
GRANT_TYPE = "tiers_grant"


class InvalidAuthorizationDetails(OAuth2Error):
    error = "invalid_authorization_details"  # RFC 9396 §5


class InvalidTarget(OAuth2Error):
    error = "invalid_target"  # RFC 8707 §2


class InvalidDPoPProof(OAuth2Error):
    error = "invalid_dpop_proof"  # RFC 9449 §5


def token_endpoint() -> str:
    return f"{settings.TIERS_BASE_URL}/oauth/token"


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication: a JWT signed with a key the client registered.

    Its jti is accepted once. This class leaves it on the request (`used_assertion`) for the
    server to record: with the token, in the token's transaction, at the token endpoint; at once
    at the other endpoints (TiersAuthorizationServer.authenticate_client).
    """

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=False)  # see verify_claims and __call__

    def __call__(self, query_client: Any, request: Any) -> OAuthClient | None:
        client: OAuthClient | None = super().__call__(query_client, request)
        if client is not None:
            # The assertion's signature and claims were verified by the call above.
            _, claims = self.extract_assertion(request.form["client_assertion"])
            # Kept until authlib would refuse the assertion anyway: its exp plus the leeway it allows
            # (and a minute more), so that purging used jtis never makes one acceptable again.
            seconds = max(0, int(claims["exp"] - timezone.now().timestamp())) + self.leeway + 60
            request.used_assertion = UsedAssertion(
                client=client,
                jti=str(claims["jti"])[:200],
                expires_at=timezone.now() + datetime.timedelta(seconds=seconds),
            )
        return client

    def get_audiences(self) -> list[str]:
        # The token endpoint's URL or the issuer, as RFC 7523 and RFC 9700 §2.5 allow.
        return [token_endpoint(), tokens.issuer()]

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        if not client.jwks:
            raise InvalidClientAssertion(description="This client's keys are not available.")
        # A remembered client keeps its imported keys, tied to the row they were read from.
        keyset: KeySet | None = client.__dict__.get("_tiers_keyset")
        if keyset is None:
            keyset = client.__dict__["_tiers_keyset"] = KeySet.import_key_set(client.jwks)
        return keyset

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        # authlib's default accepts every recommended algorithm; a client's key decides, asymmetric only.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as exc:
            raise InvalidClientAssertion(exc.description) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp - timezone.now().timestamp() > MAX_ASSERTION_SECONDS:
            raise InvalidClientAssertion(description=f"A client assertion may live {MAX_ASSERTION_SECONDS} s at most.")
        super().verify_claims(claims)
        if "jti" not in claims:
            raise InvalidClientError(description="Missing JWT ID.")


class InvalidClientAssertion(InvalidClientError):
    """An assertion refused: an invalid_client error, so that a client this process remembers is read again."""

    status_code = 401


class TiersClientCredentials(ClientCredentialsGrant):
    """Client credentials, optionally bound to one grant and sender-constrained with DPoP."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

    def validate_requested_scope(self) -> None:
        """Checked with the grant binding in create_token_response."""

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client
        grant, scopes = _binding(client, self.request.form)
        audience = grant.audience if grant else tokens.tiers_audience()
        resource = self.request.form.get("resource")
        if resource and resource.rstrip("/") != audience.rstrip("/"):
            raise InvalidTarget(description=f"This token's data is served at {audience}, not {resource}.")
        jkt = _dpop_thumbprint(client, self.request)
        assertion: UsedAssertion | None = getattr(self.request, "used_assertion", None)
        try:
            response = services.token_issue(
                client=client, scope=" ".join(scopes), grant=grant, audience=audience, jkt=jkt, assertion=assertion
            )
        except services.AssertionReused as exc:
            self.request.used_assertion = None  # recorded by its first use
            security_log.warning("client assertion replayed", extra={"client_id": client.client_id})
            raise InvalidClientError(description="JWT ID is used before.") from exc
        self.request.used_assertion = None  # recorded with the token
        return 200, response, self.TOKEN_RESPONSE_HEADER


def _binding(client: OAuthClient, form: Any) -> tuple[Grant | None, list[str]]:
    """The grant the token is bound to (if any) and its scopes, from `scope` and `authorization_details`."""
    requested = (form.get("scope") or "").split()
    grant_ids = {scope.removeprefix("grant:") for scope in requested if scope.startswith("grant:")}
    plain = [scope for scope in requested if not scope.startswith("grant:")]
    if form.get("authorization_details"):
        grant_ids |= _grant_ids_from_details(form["authorization_details"])
    for scope in plain:
        if scope not in client.scopes:
            raise InvalidScopeError(description=f"This client may not ask for scope {scope!r}.")
    if not grant_ids:
        return None, plain or [scope for scope in client.scopes if scope in services.SCOPES and scope != "grants"]
    if len(grant_ids) > 1:
        raise InvalidRequestError(description="A token is bound to one grant at most.")
    if "grants" not in client.scopes:
        raise InvalidScopeError(description="This client may not ask for grant-bound tokens.")
    grant = _client_grant(client, grant_ids.pop())
    return grant, [*plain, f"grant:{grant.id}"]


def _grant_ids_from_details(raw: str) -> set[str]:
    try:
        details = json.loads(raw)
    except ValueError as exc:
        raise InvalidAuthorizationDetails(description="authorization_details is not JSON.") from exc
    if not isinstance(details, list) or not details:
        raise InvalidAuthorizationDetails(description="authorization_details must be a non-empty JSON array.")
    ids = set()
    for detail in details:
        if not isinstance(detail, dict) or detail.get("type") != GRANT_TYPE:
            raise InvalidAuthorizationDetails(description=f"Only type {GRANT_TYPE!r} is supported.")
        if not isinstance(detail.get("grant_id"), str):
            raise InvalidAuthorizationDetails(description="A tiers_grant needs a grant_id string.")
        ids.add(detail["grant_id"])
    return ids


def _client_grant(client: OAuthClient, grant_id: str) -> Grant:
    """The client's organisation's active grant, or the error that names no other's."""
    grant_uuid = uuid_or_none(grant_id)
    grant = Grant.objects.select_related("dataset").filter(pk=grant_uuid).first() if grant_uuid else None
    if grant is None or grant.organisation_id != client.organisation_id:
        raise InvalidAuthorizationDetails(description="No such grant for this client's organisation.")
    if not grant.is_active():
        raise InvalidAuthorizationDetails(description="This grant is not active.")
    return grant


def _dpop_thumbprint(client: OAuthClient, request: Any) -> str:
    proof = request.headers.get("DPoP")
    if not proof:
        if client.dpop_bound_access_tokens:
            raise InvalidDPoPProof(description="This client's tokens must be DPoP-bound: send a DPoP proof.")
        return ""
    try:
        return dpop.verify_proof(proof, method="POST", url=token_endpoint())
    except dpop.InvalidProof as exc:
        security_log.warning("DPoP proof refused at the token endpoint: %s", exc)
        raise InvalidDPoPProof(description=str(exc)) from exc


# While the token endpoint authenticates a client, query_client may answer from this process's
# memory; the clients it answered with are listed here (see TiersAuthorizationServer.authenticate_client).
_remembered_answers: ContextVar[list[OAuthClient] | None] = ContextVar("tiers_remembered_answers", default=None)


class TiersAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(OAuthClient, IssuedToken)

    def query_client(self, client_id: str) -> OAuthClient | None:
        answers = _remembered_answers.get()
        if answers is not None:
            client = clients.client_remembered(client_id)
            if client is not None:
                answers.append(client)
                return client
        return clients.client_fresh(client_id)

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> OAuthClient:
        if endpoint != "token":
            client: OAuthClient = super().authenticate_client(request, methods, endpoint)
            if not _use_assertion_now(request):  # no token to record it with
                raise InvalidClientError(description="JWT ID is used before.")
            return client
        answers: list[OAuthClient] = []
        remembering = _remembered_answers.set(answers)
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            if not answers:
                raise
        finally:
            _remembered_answers.reset(remembering)
        # Refused as this process remembered the client: its credentials may be new. Ask the database.
        for remembered in answers:
            clients.client_forget(remembered.client_id)
        return super().authenticate_client(request, methods, endpoint)

    def create_token_response(self, request: Any = None) -> Any:
        try:
            return super().create_token_response(request)
        except services.ClientChanged as changed:
            clients.client_forget(changed.client_id)
        # The client changed since this process read it (disabled, excluded, new credentials):
        # the request is answered again, as the database has the client now.
        try:
            return super().create_token_response(request)
        except services.ClientChanged:
            error = InvalidClientError(status_code=401, description="The client changed; ask again.")
            return self.handle_response(*error())

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        # An assertion that authenticated a refused token request is spent all the same.
        _use_assertion_now(request)
        return super().handle_error_response(request, error)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Tokens are recorded by services.token_issue."""


def _use_assertion_now(request: Any) -> bool:
    """Record the client assertion that authenticated this request, if any and not yet; False if used before."""
    assertion: UsedAssertion | None = getattr(request, "used_assertion", None)
    if assertion is None:
        return True
    request.used_assertion = None
    if services.assertion_use(assertion=assertion):
        return True
    security_log.warning("client assertion replayed", extra={"client_id": assertion.client.client_id})
    return False


class _TokenLookup:
    """Find the issued token behind a presented JWT, for introspection and revocation."""

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        try:
            header_and_claims = tokens.decode_unverified_jti(token_string)
        except tokens.InvalidToken:
            return None
        return (
            IssuedToken.objects.select_related("client__organisation", "grant__dataset")
            .filter(jti=header_and_claims)
            .first()
        )


class Introspection(_TokenLookup, IntrospectionEndpoint):
    """RFC 7662. A client may introspect its own tokens, and a holder's client tokens meant for its API."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

    def check_permission(self, token: IssuedToken, client: OAuthClient, request: Any) -> bool:
        if token.client_id == client.pk:
            return True
        grant = token.grant
        if grant is None or grant.dataset.mode != Dataset.Mode.FEDERATED:
            return False
        return grant.dataset.holder_id == client.organisation_id and token.audience == grant.audience

    def create_introspection_payload(self, token: IssuedToken | None) -> dict[str, Any]:
        if token is None or not tokens.still_live(token):
            return {"active": False}
        payload: dict[str, Any] = {
            "active": True,
            "client_id": token.client.client_id,
            "token_type": "DPoP" if token.jkt else "Bearer",
            "scope": token.scope,
            "sub": token.client.client_id,
            "aud": token.audience,
            "iss": tokens.issuer(),
            "jti": token.jti,
            "iat": int(token.issued_at.timestamp()),
            "exp": int(token.expires_at.timestamp()),
            "organisation": token.client.organisation.slug,
        }
        if token.grant is not None:
            payload["grant_id"] = str(token.grant.id)
            payload["purpose"] = token.grant.purpose
        if token.jkt:
            payload["cnf"] = {"jkt": token.jkt}
        return payload


class Revocation(_TokenLookup, RevocationEndpoint):
    """RFC 7009: a client revokes its own tokens; an unknown token is answered 200 all the same."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

    def authenticate_token(self, request: Any, client: OAuthClient) -> IssuedToken | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.client_id == client.pk else None

    def revoke_token(self, token: IssuedToken, request: Any) -> None:
        services.token_revoke(actor=request.client, jti=token.jti)


server = TiersAuthorizationServer()
server.register_client_auth_method("private_key_jwt", PrivateKeyJWT())
server.register_grant(TiersClientCredentials)
server.register_endpoint(Introspection)
server.register_endpoint(Revocation)
