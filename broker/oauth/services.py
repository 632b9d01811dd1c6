"""State changes of OAuth clients and tokens: one transaction and one audit entry each."""

from __future__ import annotations

import datetime
import json
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker import audit, policy
from broker.errors import InvalidInput, TiersError
from broker.models import Organisation, User
from broker.oauth import tokens
from broker.oauth.models import SECRET_PREFIX, IssuedToken, OAuthClient, UsedAssertion, hash_secret
from broker.observability import metrics
from broker.policy import OrgAction
from sharing.models import Grant

SCOPES = {
    "organisation": "read the organisation's own record",
    "grants": "obtain tokens bound to the organisation's grants (grant:<id>)",
    "link_codes": "issue identity-link codes for the holder's customers",
    "consent_modules": "publish the holder's consent modules",
    "datasets": "register the holder's datasets and upload their data",
    "access_requests": "submit the data user's access requests",
    "decisions": "ask which subjects a grant may include and report deliveries (federated holders)",
    "webhooks": "manage webhook endpoints, replay deliveries and attest deletions",
}


class ClientChanged(TiersError):
    """The client's row changed after it authenticated this request: disabled, excluded or given new credentials."""

    status = 401
    slug = "invalid-client"
    title = "The client changed while its token was being issued."

    def __init__(self, client_id: str) -> None:
        super().__init__(f"Client {client_id} changed while its token was being issued.")
        self.client_id = client_id


class AssertionReused(TiersError):
    """A client assertion's jti was accepted before (RFC 7523 §3: once only)."""

    status = 401
    slug = "invalid-client"
    title = "This client assertion was used before."


def _public_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A client's JWKS, checked to hold public signing keys only."""
    try:
        keyset = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"jwks is not a valid JWK Set: {exc}") from exc
    if not keyset.keys:
        raise InvalidInput("jwks holds no key.")
    for key in keyset.keys:
        if key.is_private or key.key_type == "oct":
            raise InvalidInput("jwks must hold public keys only; never send a private or symmetric key.")
    return {"keys": [key.as_dict(private=False) for key in keyset.keys]}


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def client_register(
    *,
    actor: User,
    organisation: Organisation,
    name: str,
    auth_method: str,
    scopes: list[str],
    jwks: dict[str, Any] | None = None,
    jwks_uri: str = "",
    dpop_bound_access_tokens: bool = False,
) -> tuple[OAuthClient, str | None]:
    """Register a client; returns it and, for client_secret_basic, the secret (shown once)."""
    policy.require(actor, OrgAction.MANAGE_CLIENTS, organisation)
    unknown = set(scopes) - SCOPES.keys()
    if unknown:
        raise InvalidInput(f"Unknown scopes: {', '.join(sorted(unknown))}.", allowed=sorted(SCOPES))
    secret = None
    client = OAuthClient(
        organisation=organisation,
        name=name,
        client_id="tiers_" + secrets.token_urlsafe(16),
        auth_method=auth_method,
        scopes=sorted(set(scopes)),
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        created_by=actor,
    )
    if auth_method == OAuthClient.AuthMethod.CLIENT_SECRET_BASIC:
        secret = _new_secret()
        client.secret_hash, client.secret_hint = hash_secret(secret), secret[:8]
    elif jwks is not None:
        client.jwks = _public_jwks(jwks)
    elif jwks_uri:
        client.jwks_uri = jwks_uri
    else:
        raise InvalidInput("A private_key_jwt client needs jwks or jwks_uri.")
    with transaction.atomic():
        client.save()
        audit.record(
            verb="client.registered",
            actor=actor,
            subject=organisation,
            details={"client_id": client.client_id, "auth_method": auth_method, "scopes": client.scopes},
        )
    return client, secret


def client_rotate_credentials(
    *, actor: User, client: OAuthClient, jwks: dict[str, Any] | None = None
) -> tuple[OAuthClient, str | None]:
    """A new secret (shown once), or new public keys; the old ones stop working at once."""
    policy.require(actor, OrgAction.MANAGE_CLIENTS, client.organisation)
    with transaction.atomic():
        client = OAuthClient.objects.select_for_update().get(pk=client.pk)
        secret = None
        if client.auth_method == OAuthClient.AuthMethod.CLIENT_SECRET_BASIC:
            secret = _new_secret()
            client.secret_hash, client.secret_hint = hash_secret(secret), secret[:8]
        else:
            if jwks is None:
                raise InvalidInput("Send the client's new public keys as jwks.")
            client.jwks, client.jwks_uri = _public_jwks(jwks), ""
        client.save()
        tokens.invalidate_liveness()  # processes that remember the client read it again
        audit.record(
            verb="client.credentials_rotated",
            actor=actor,
            subject=client.organisation,
            details={"client_id": client.client_id},
        )
    return client, secret


def client_disable(*, actor: User, client: OAuthClient) -> OAuthClient:
    """Disable a client: its tokens are refused from the next request on."""
    policy.require(actor, OrgAction.MANAGE_CLIENTS, client.organisation)
    with transaction.atomic():
        client = OAuthClient.objects.select_for_update().get(pk=client.pk)
        if client.disabled_at is not None:
            return client
        client.disabled_at = timezone.now()
        client.save(update_fields=["disabled_at"])
        tokens.invalidate_liveness()
        audit.record(
            verb="client.disabled", actor=actor, subject=client.organisation, details={"client_id": client.client_id}
        )
    return client


def token_issue(
    *,
    client: OAuthClient,
    scope: str,
    grant: Grant | None,
    audience: str,
    jkt: str = "",
    assertion: UsedAssertion | None = None,
) -> dict[str, Any]:
    """Issue an access token (RFC 9068), record it and the client assertion it was asked with; the token response.

    Raises ClientChanged when the client is no longer as it authenticated (the caller asks
    again with the row read afresh), AssertionReused when the assertion's jti was accepted before.
    """
    now = timezone.now()
    lifetime = settings.OAUTH_ACCESS_TOKEN_SECONDS
    issued = IssuedToken(
        jti=uuid.uuid4().hex,
        client=client,
        grant=grant,
        scope=scope,
        audience=audience,
        jkt=jkt,
        issued_at=now,
        expires_at=now + datetime.timedelta(seconds=lifetime),
    )
    claims: dict[str, Any] = {
        "iss": tokens.issuer(),
        "sub": client.client_id,
        "aud": audience,
        "client_id": client.client_id,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": issued.jti,
        "scope": scope,
        "organisation": client.organisation.slug,
    }
    if grant is not None:
        claims["grant_id"] = str(grant.id)
        claims["purpose"] = grant.purpose
        claims["authorization_details"] = [{"type": "tiers_grant", "grant_id": str(grant.id), "purpose": grant.purpose}]
    if jkt:
        claims["cnf"] = {"jkt": jkt}
    try:
        with transaction.atomic():
            _record_token(issued, assertion)
            audit.record(
                verb="token.issued",
                actor=client,
                subject=client.organisation,
                details={"jti": issued.jti, "grant": claims.get("grant_id"), "scope": scope, "dpop": bool(jkt)},
            )
    except IntegrityError as exc:
        if assertion is not None and _breaks(exc, "used_assertion_once"):
            raise AssertionReused("This client assertion was used before.") from exc
        raise
    metrics.TOKENS_ISSUED.labels(auth_method=client.auth_method).inc()
    response = {
        "access_token": tokens.sign(claims),
        "token_type": "DPoP" if jkt else "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
    if grant is not None:
        response["authorization_details"] = claims["authorization_details"]
    return response


def _record_token(issued: IssuedToken, assertion: UsedAssertion | None) -> None:
    """Insert the token's record (and the assertion's jti) if the client is still as it authenticated.

    The client may come from a process's memory (broker.oauth.clients), so the insert itself
    checks the row: enabled, organisation verified, same credentials, scopes and DPoP rule.
    On PostgreSQL this is one statement; elsewhere (the demo's SQLite) the row is read again.
    """
    client = issued.client
    if connection.vendor != "postgresql":
        current = OAuthClient.objects.select_related("organisation").filter(pk=client.pk).first()
        if current is None or _as_authenticated(current) != _as_authenticated(client):
            raise ClientChanged(client.client_id)
        if assertion is not None:
            assertion.save(force_insert=True)
        issued.save(force_insert=True)
        return
    parameters: list[Any] = []
    statement = _RECORD_IF_CLIENT_UNCHANGED
    if assertion is not None:
        statement = _WITH_ASSERTION + statement
        parameters += [client.pk, assertion.jti, assertion.expires_at]
    parameters += [
        issued.jti,
        issued.grant.pk if issued.grant is not None else None,
        issued.scope,
        issued.audience,
        issued.jkt,
        issued.issued_at,
        issued.expires_at,
        client.pk,
        Organisation.Verification.VERIFIED.value,
        client.organisation.slug,
        client.auth_method,
        client.secret_hash,
        json.dumps(client.jwks) if client.jwks is not None else None,
        client.jwks_uri,
        json.dumps(client.scopes),
        client.dpop_bound_access_tokens,
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, parameters)
        if cursor.rowcount != 1:
            raise ClientChanged(client.client_id)


def _as_authenticated(client: OAuthClient) -> tuple[Any, ...]:
    """What a token depends on in its client's row: the same columns _RECORD_IF_CLIENT_UNCHANGED compares."""
    return (
        client.is_active,
        client.organisation.slug,
        client.auth_method,
        client.secret_hash,
        client.jwks,
        client.jwks_uri,
        client.scopes,
        client.dpop_bound_access_tokens,
    )


def _breaks(exc: IntegrityError, constraint: str) -> bool:
    """Whether the error is a violation of this constraint (assumed when the driver does not say)."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name is None or name == constraint


# A data-modifying WITH runs even though the insert below does not read it; a replayed jti
# breaks used_assertion_once and the whole statement fails.
_WITH_ASSERTION = """
WITH used_assertion AS (
    INSERT INTO broker_usedassertion (client_id, jti, expires_at) VALUES (%s, %s, %s)
)"""

# No row is inserted when the client changed since it authenticated: disabled, its organisation
# no longer verified, or new credentials, scopes or DPoP rule (the columns of _as_authenticated).
_RECORD_IF_CLIENT_UNCHANGED = """
INSERT INTO broker_issuedtoken (jti, client_id, grant_id, scope, audience, jkt, issued_at, expires_at)
SELECT %s, client.id, %s, %s, %s, %s, %s, %s
FROM broker_oauthclient AS client
JOIN broker_organisation AS organisation ON organisation.id = client.organisation_id
WHERE client.id = %s
  AND client.disabled_at IS NULL
  AND organisation.verification_state = %s
  AND organisation.slug = %s
  AND client.auth_method = %s
  AND client.secret_hash = %s
  AND client.jwks IS NOT DISTINCT FROM %s::jsonb
  AND client.jwks_uri = %s
  AND client.scopes = %s::jsonb
  AND client.dpop_bound_access_tokens = %s
"""


def assertion_use(*, assertion: UsedAssertion) -> bool:
    """Record a client assertion's jti on its own (no token came of it); False when it was used before."""
    try:
        with transaction.atomic():
            assertion.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def token_revoke(*, actor: OAuthClient | User, jti: str) -> bool:
    """Revoke one token by its id; False when it was already revoked or unknown."""
    with transaction.atomic():
        issued = IssuedToken.objects.select_for_update().filter(jti=jti).first()
        if issued is None or issued.revoked_at is not None:
            return False
        issued.revoked_at = timezone.now()
        issued.save(update_fields=["revoked_at"])
        tokens.invalidate_liveness()
        audit.record(
            verb="token.revoked",
            actor=actor,
            subject=f"oauth_client:{issued.client.client_id}",
            details={"jti": jti},
        )
    return True


def tokens_purge_expired(*, grace: datetime.timedelta = datetime.timedelta(days=1)) -> int:
    """Delete token records and used client assertions past their expiry (a scheduled job; safe twice).

    An expired token is refused by its signature's claims alone; its record only
    served revocation and introspection. The audit entries of its issue and
    revocation stay in the log.
    """
    cutoff = timezone.now() - grace
    with transaction.atomic():
        tokens_deleted, _ = IssuedToken.objects.filter(expires_at__lt=cutoff).delete()
        UsedAssertion.objects.filter(expires_at__lt=timezone.now()).delete()
    return tokens_deleted
