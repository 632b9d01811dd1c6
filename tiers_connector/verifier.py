"""Checking a data user's access token at the holder's API, as Tiers checks its own tokens.

A token is an RFC 9068 JWT signed ES256 by Tiers, with a `kid` that must be in
Tiers' published JWK Set; keys given in the token itself (`jwk`, `jku`, `x5u`,
`x5c`) are never used. The JWK Set is cached; an unknown `kid` refreshes it
(at most once per `refresh_interval`, so forged kids cannot make the API
hammer Tiers), and it is refreshed anyway once older than `max_age`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from tiers_connector.errors import InvalidToken, TiersUnavailable

if TYPE_CHECKING:
    from tiers_connector.client import TiersClient

ALGORITHMS = ["ES256"]  # what Tiers signs with: never none, never HMAC
TOKEN_TYPES = ("at+jwt", "application/at+jwt")
LEEWAY_SECONDS = 30
GRANT_TYPE = "tiers_grant"


@dataclass(frozen=True)
class GrantToken:
    """A verified token bound to one grant: who reads, under which grant, for which purpose."""

    grant_id: str
    organisation_client_id: str
    purpose: str
    claims: dict[str, Any]

    @property
    def organisation(self) -> str:
        """The reading organisation's slug at Tiers."""
        return str(self.claims.get("organisation", ""))

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


class _KeyCache:
    """Tiers' public ES256 keys by kid, fetched lazily and shared by every thread."""

    def __init__(
        self,
        url: str,
        fetch: Callable[[str], Mapping[str, Any]],
        *,
        max_age: float,
        refresh_interval: float,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._max_age = max_age
        self._refresh_interval = refresh_interval
        self._keys: dict[str, ECKey] = {}
        self._fetched_at: float | None = None
        self._failure: TiersUnavailable | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> ECKey | None:
        """The key with this kid; refreshes once if it is unknown, unless a refresh just happened."""
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > self._max_age
            recent = self._fetched_at is not None and now - self._fetched_at < self._refresh_interval
            if stale or (kid not in self._keys and not recent):
                self._refresh(now)
            if not self._keys and self._failure is not None:
                raise self._failure  # Tiers unreachable and no key known: a 503, not the token's fault
            return self._keys.get(kid)

    def signer_of(
        self,
        token: bytes,
        *,
        types: tuple[str, ...],
        malformed: str,
        refuse: Callable[[str], Exception],
    ) -> ECKey:
        """The published key a compact JWS names, once its header is one Tiers writes: ES256, one of
        `types`, a kid (keys carried in the header are never used). Anything else: `refuse(reason)`."""
        try:
            header = jws.extract_compact(token).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise refuse(malformed) from exc
        if header.get("alg") not in ALGORITHMS:
            raise refuse(f"algorithm {header.get('alg')!r} is not accepted")
        if str(header.get("typ", "")).lower() not in types:
            raise refuse(f"type {header.get('typ')!r} is not {types[0]}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise refuse("no kid: the key must be one Tiers publishes")
        key = self.key(kid)
        if key is None:
            raise refuse(f"unknown key {kid!r}")
        return key

    def _refresh(self, now: float) -> None:
        self._fetched_at = now  # failures count too: an outage is retried once per refresh interval
        try:
            published = self._fetch(self.url)
        except TiersUnavailable as exc:
            self._failure = exc  # keep verifying with the keys already known, if any
            return
        self._keys, self._failure = _es256_keys(published), None

    def forget(self) -> None:
        with self._lock:
            self._keys, self._fetched_at, self._failure = {}, None, None


def _es256_keys(published: Mapping[str, Any]) -> dict[str, ECKey]:
    """The P-256 signing keys of a JWK Set, by kid; every other key is ignored."""
    keys: dict[str, ECKey] = {}
    for data in published.get("keys", []) if isinstance(published.get("keys"), list) else []:
        if not isinstance(data, dict) or data.get("kty") != "EC" or data.get("crv") != "P-256":
            continue
        if data.get("alg", "ES256") != "ES256" or data.get("use", "sig") != "sig" or not data.get("kid"):
            continue
        if "d" in data:
            continue  # a published private key is a misconfiguration, never a key to trust
        try:
            keys[str(data["kid"])] = ECKey.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
    return keys


def fetch_jwks(url: str, *, session: requests.Session | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """GET a JWK Set; TiersUnavailable when it cannot be had."""
    try:
        response = (session or requests).get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TiersUnavailable(f"GET {url}", exc) from exc
    if not isinstance(body, dict):
        raise TiersUnavailable(f"GET {url}", ValueError("not a JWK Set"))
    return body


def bearer_token(authorization: str) -> str:
    """The token of an Authorization header ("Bearer …"), or the token itself when given bare."""
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if rest:
        if scheme.lower() == "dpop":
            raise InvalidToken("DPoP-bound tokens are not accepted by this API (no DPoP proof check)")
        if scheme.lower() != "bearer":
            raise InvalidToken(f"authorization scheme {scheme!r} is not Bearer")
        value = rest.strip()
    if not value:
        raise InvalidToken("no token")
    return value


class TokenVerifier:
    """Verifies data users' access tokens for one audience: the holder API's base URL.

    Thread-safe; build one per process and share it.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        client: TiersClient | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        leeway: int = LEEWAY_SECONDS,
        jwks_max_age: float = 300.0,
        jwks_refresh_interval: float = 30.0,
    ) -> None:
        """`client` (the holder's TiersClient) is needed only for `verify(..., introspect=True)`."""
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.client = client
        self._keys = _KeyCache(
            jwks_url,
            lambda url: fetch_jwks(url, session=session, timeout=timeout),
            max_age=jwks_max_age,
            refresh_interval=jwks_refresh_interval,
        )

    def verify(self, authorization: str, *, introspect: bool = False) -> GrantToken:
        """The grant a token carries, if Tiers signed it for this API and it is in date.

        `authorization` is the Authorization header's value or the bare token.
        With `introspect=True`, Tiers is also asked whether the token is still
        live (not revoked, its grant not ended): a round trip per call, for the
        reads that cannot wait for the token to expire.
        """
        token = bearer_token(authorization)
        claims = self._claims(token)
        grant = _grant_of(claims)
        if introspect:
            self._check_live(token, grant)
        return grant

    def _claims(self, token: str) -> dict[str, Any]:
        key = self._keys.signer_of(token.encode(), types=TOKEN_TYPES, malformed="malformed token", refuse=InvalidToken)
        try:
            decoded = jwt.decode(token, key, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
                client_id={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from exc
        claims = decoded.claims
        if not isinstance(claims["iat"], int) or claims["iat"] > time.time() + self.leeway:
            raise InvalidToken("issued in the future")
        if claims.get("cnf"):
            raise InvalidToken("DPoP-bound tokens are not accepted by this API (no DPoP proof check)")
        return dict(claims)

    def _check_live(self, token: str, grant: GrantToken) -> None:
        if self.client is None:
            raise ValueError("introspect=True needs the holder's TiersClient: TokenVerifier(..., client=...)")
        answer = self.client.introspect(token)
        if answer.get("active") is not True:
            raise InvalidToken("revoked, or its grant or client is no longer active (introspection)")
        if answer.get("jti") != grant.jti or answer.get("grant_id") != grant.grant_id:
            raise InvalidToken("introspection describes another token")

    def forget_keys(self) -> None:
        """Drop the cached JWK Set (after a key incident at Tiers, say)."""
        self._keys.forget()


def _grant_of(claims: dict[str, Any]) -> GrantToken:
    """The grant binding: `grant_id`, matched by its `tiers_grant` authorization detail and scope."""
    grant_id = claims.get("grant_id")
    if not isinstance(grant_id, str) or not grant_id:
        raise InvalidToken("the token is not bound to a grant")
    details = claims.get("authorization_details")
    bound = [
        detail
        for detail in (details if isinstance(details, list) else [])
        if isinstance(detail, dict) and detail.get("type") == GRANT_TYPE
    ]
    if len(bound) != 1 or bound[0].get("grant_id") != grant_id:
        raise InvalidToken("authorization_details do not name the token's grant")
    if f"grant:{grant_id}" not in str(claims.get("scope", "")).split():
        raise InvalidToken("the token's scope does not name its grant")
    purpose = claims.get("purpose") or bound[0].get("purpose")
    if not isinstance(purpose, str) or not purpose:
        raise InvalidToken("the token names no purpose")
    return GrantToken(
        grant_id=grant_id, organisation_client_id=str(claims["client_id"]), purpose=purpose, claims=claims
    )
