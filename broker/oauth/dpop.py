"""DPoP (RFC 9449): proofs that the caller holds the key a token is bound to."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from django.core.cache import cache
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

PROOF_ALGORITHMS = ["ES256", "EdDSA", "RS256", "PS256"]
MAX_AGE_SECONDS = 60
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


class InvalidProof(Exception):
    """The DPoP proof is missing, malformed, stale, replayed or for another request."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify_proof(proof: str, *, method: str, url: str, access_token: str | None = None) -> str:
    """Check one DPoP proof for this request; return the thumbprint (jkt) of its key."""
    try:
        header = jws.extract_compact(proof.encode()).headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidProof("malformed DPoP proof") from exc
    if header.get("typ") != "dpop+jwt":
        raise InvalidProof("DPoP proof typ must be dpop+jwt")
    if header.get("alg") not in PROOF_ALGORITHMS:
        raise InvalidProof(f"DPoP proof algorithm {header.get('alg')!r} is not accepted")
    public = header.get("jwk")
    if not isinstance(public, dict) or PRIVATE_MEMBERS & public.keys():
        raise InvalidProof("DPoP proof needs a public jwk header")
    try:
        key = JWKRegistry.import_key(public)
        claims: dict[str, Any] = jwt.decode(proof, key, algorithms=[header["alg"]]).claims
    except (JoseError, ValueError) as exc:
        raise InvalidProof(f"DPoP proof signature: {exc}") from exc
    _check_claims(claims, method=method, url=url, access_token=access_token)
    # One use per jti while it could still be accepted (RFC 9449 §11.1).
    if not cache.add(f"dpop-jti:{key.thumbprint()}:{claims['jti']}", 1, timeout=2 * MAX_AGE_SECONDS + 10):
        raise InvalidProof("DPoP proof replayed")
    return key.thumbprint()


def _check_claims(claims: dict[str, Any], *, method: str, url: str, access_token: str | None) -> None:
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidProof("DPoP proof needs a jti")
    if claims.get("htm") != method:
        raise InvalidProof("DPoP proof is for another method")
    if str(claims.get("htu", "")).split("?")[0].split("#")[0] != url:
        raise InvalidProof("DPoP proof is for another URL")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(time.time() - iat) > MAX_AGE_SECONDS:
        raise InvalidProof("DPoP proof is too old or from the future")
    if access_token is not None:
        expected = b64url(hashlib.sha256(access_token.encode()).digest())
        if claims.get("ath") != expected:
            raise InvalidProof("DPoP proof is for another access token")
