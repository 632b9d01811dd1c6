"""Access tokens: RFC 9068 JWTs signed with the broker's ES256 key, and their verification.

Verification is what every protected API pays on every request, so a token's
signature and claims are checked once per process and remembered until the
token expires; whether it was revoked is still asked of the database each
time (`live_caller`), so a revocation takes effect on the very next request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker import keys
from broker.cache_client import raw_redis
from broker.models import Organisation
from broker.oauth.models import IssuedToken, OAuthClient
from broker.redis_client import redis_client
from sharing.models import Grant

TOKEN_TYPES = ("at+jwt", "application/at+jwt")
ALGORITHMS = ["ES256"]  # never none, never HMAC: only what the broker signs with
LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000

security_log = logging.getLogger("tiers.security")


class InvalidToken(Exception):
    """The token is not one this resource accepts; the message says why (for the security log)."""

    def __init__(self, reason: str, *, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class Caller:
    """Who is calling, resolved once per request from a live token."""

    client: OAuthClient
    organisation: Organisation
    grant: Grant | None
    claims: dict[str, Any]

    @property
    def scopes(self) -> set[str]:
        return set(str(self.claims.get("scope", "")).split())


class ClientPrincipal:
    """What `request.user` is when an OAuth client calls: authenticated, but no person."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_operator = False
    pk = None

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def __str__(self) -> str:
        return f"client:{self.caller.client.client_id}"


def issuer() -> str:
    return settings.TIERS_BASE_URL


def tiers_audience() -> str:
    """The audience of Tiers' own API."""
    return settings.TIERS_BASE_URL


# --- verification ------------------------------------------------------------------------------

_keyset: KeySet | None = None
_verified: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
_lock = threading.Lock()


def _published_keys(kid: str) -> KeySet:
    """The broker's public keys; reloaded when a token names a key this process has not seen."""
    global _keyset
    known = _keyset
    if known is None or all(key.kid != kid for key in known.keys):
        known = _keyset = KeySet.import_key_set(keys.jwks())  # type: ignore[arg-type]
    return known


def forget_verified() -> None:
    """Drop the verification cache (tests, key rotation in this process)."""
    global _keyset
    with _lock:
        _verified.clear()
        _keyset = None


def _check(token: str, audience: str) -> dict[str, Any]:
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidToken("malformed token") from exc
    if header.get("alg") not in ALGORITHMS:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
    if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
        raise InvalidToken(f"type {header.get('typ')!r} is not at+jwt")
    try:
        decoded = jwt.decode(token, _published_keys(str(header.get("kid", ""))), algorithms=ALGORITHMS)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer()},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from exc
    iat = decoded.claims.get("iat")
    if not isinstance(iat, int) or iat > time.time() + LEEWAY_SECONDS:
        raise InvalidToken("issued in the future")
    return decoded.claims


def verify(token: str, *, audience: str) -> dict[str, Any]:
    """The token's claims if Tiers signed it for this audience and it has not expired."""
    now = time.time()
    with _lock:
        cached = _verified.get(token)
        if cached and cached[1] > now and cached[0].get("aud") in (audience, [audience]):
            _verified.move_to_end(token)
            return cached[0]
    claims = _check(token, audience)
    with _lock:
        _verified[token] = (claims, float(claims["exp"]) + LEEWAY_SECONDS)
        while len(_verified) > CACHE_SIZE:
            _verified.popitem(last=False)
    return claims


def live_caller(claims: dict[str, Any]) -> Caller:
    """Resolve the caller: the token, its client, organisation and grant must be live at this request.

    The answer is remembered per token until anything that could change it is
    invalidated (see invalidate_liveness); without Redis, the database is asked
    on every request.
    """
    jti = str(claims["jti"])
    generation = _liveness_generation()
    now = time.monotonic()
    with _lock:
        remembered = _live.get(jti)
    if remembered is not None and generation is not None:
        caller, seen_generation, seen_at = remembered
        fresh = seen_generation == generation and now - seen_at < LIVENESS_MAX_AGE_SECONDS
        if fresh and (caller.grant is None or caller.grant.is_active()):
            return caller
    issued = IssuedToken.objects.select_related("client__organisation", "grant__dataset").filter(jti=jti).order_by()[:1]
    token = issued[0] if issued else None
    if token is None or token.client.client_id != claims["client_id"]:
        raise InvalidToken("unknown token id")
    if not still_live(token):
        raise InvalidToken("token revoked or expired, or its client or grant no longer active")
    caller = Caller(client=token.client, organisation=token.client.organisation, grant=token.grant, claims=claims)
    if generation is not None:
        with _lock:
            _live[jti] = (caller, generation, now)
            while len(_live) > CACHE_SIZE:
                _live.popitem(last=False)
    return caller


# Revocations, disabled clients, excluded organisations and ended grants are announced on a
# Redis channel; each process counts the announcements it hears (its generation) and trusts what
# it remembers about a token only while that count is unchanged. Listening costs no round trip
# per request, which a GET of a shared counter did.
CHANNEL = "oauth:liveness"
# Bounds how long a remembered answer could outlive a lost announcement.
LIVENESS_MAX_AGE_SECONDS = 30.0
_live: OrderedDict[str, tuple[Caller, int, float]] = OrderedDict()


class _LivenessFeed:
    """A thread of this process that listens for liveness announcements; None while it cannot."""

    def __init__(self) -> None:
        self.generation = 0
        self.connected = False
        self._started = False
        self._start_lock = threading.Lock()

    def current(self) -> int | None:
        if not settings.REDIS_URL:
            return None  # no Redis (the demo): every request asks the database
        if not self._started:
            with self._start_lock:
                if not self._started:
                    threading.Thread(target=self._listen, name="tiers-liveness", daemon=True).start()
                    self._started = True
        return self.generation if self.connected else None

    def bump(self) -> None:
        self.generation += 1

    def _listen(self) -> None:
        channel = cache.make_and_validate_key(CHANNEL)
        while True:
            try:
                client = redis_client(health_check_interval=10)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                pubsub.get_message(timeout=5)  # the subscription's confirmation
                self.bump()  # whatever was remembered before (re)connecting may have missed news
                self.connected = True
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.bump()
            except Exception:
                security_log.warning("liveness feed lost: checking tokens against the database until it is back")
            self.connected = False
            time.sleep(1)


_feed = _LivenessFeed()


def _liveness_generation() -> int | None:
    return _feed.current()


def liveness_generation() -> int | None:
    """How many liveness announcements this process has heard; None while it cannot hear them."""
    return _liveness_generation()


def _announce() -> None:
    _feed.bump()  # this process at once; the others when the message reaches them
    if not settings.REDIS_URL:
        return
    try:
        client = raw_redis(CHANNEL)
        if client is not None:
            client.publish(cache.make_and_validate_key(CHANNEL), "1")
    except Exception:
        security_log.error("liveness change not announced: other processes may trust a token for %ss", 30)


def invalidate_liveness() -> None:
    """Forget every remembered token state: before the change commits, and again once it has."""
    _announce()
    transaction.on_commit(_announce, robust=True)


# --- signing -----------------------------------------------------------------------------------


def sign(claims: dict[str, Any]) -> str:
    """Sign access-token claims as an RFC 9068 JWT."""
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return keys.sign_jws(payload, typ="at+jwt")


def decode_unverified_jti(token: str) -> str:
    """The jti of a token this server signed; the signature is checked, the expiry is not."""
    try:
        header = jws.extract_compact(token.encode()).headers()
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm not accepted")
        decoded = jwt.decode(token, _published_keys(str(header.get("kid", ""))), algorithms=ALGORITHMS)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidToken("not a token of this server") from exc
    jti = decoded.claims.get("jti")
    if not isinstance(jti, str):
        raise InvalidToken("no jti")
    return jti


def still_live(token: IssuedToken) -> bool:
    """Not expired, not revoked, its client active and its grant (if any) active."""
    if token.revoked_at is not None or token.expires_at <= timezone.now() or not token.client.is_active:
        return False
    return token.grant is None or token.grant.is_active()
