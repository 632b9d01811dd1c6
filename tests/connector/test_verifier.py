"""The connector's token check: what Tiers itself checks, against keys made here (no Django, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.connector.conftest import (
    AUDIENCE,
    GRANT_ID,
    ISSUER,
    JWKS_URL,
    FakeResponse,
    FakeSession,
    b64,
    es256_key,
    grant_claims,
    sign,
)
from tiers_connector import InvalidToken, TiersUnavailable, TokenVerifier


def verifier(session: FakeSession, **options: object) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, JWKS_URL, session=session, **options)  # type: ignore[arg-type]


def refused(session: FakeSession, token: str) -> str:
    with pytest.raises(InvalidToken) as refusal:
        verifier(session).verify(f"Bearer {token}")
    return refusal.value.reason


def test_a_token_tiers_signed_for_this_api_names_its_grant(session: FakeSession, tiers_key: ECKey) -> None:
    token = sign(tiers_key, grant_claims())
    grant = verifier(session).verify(f"Bearer {token}")
    assert (grant.grant_id, grant.organisation_client_id, grant.purpose) == (
        GRANT_ID,
        "tiers_city",
        "dpv:ScientificResearch",
    )
    assert grant.organisation == "marlieux"
    assert grant.claims["aud"] == AUDIENCE


def test_the_bare_token_is_accepted_as_well_as_the_header(session: FakeSession, tiers_key: ECKey) -> None:
    assert verifier(session).verify(sign(tiers_key, grant_claims())).grant_id == GRANT_ID


def test_the_key_set_is_fetched_once_and_cached(session: FakeSession, tiers_key: ECKey) -> None:
    check = verifier(session)
    for _ in range(3):
        check.verify(sign(tiers_key, grant_claims()))
    assert session.count("GET", JWKS_URL) == 1


def test_alg_none_is_refused(session: FakeSession, tiers_key: ECKey) -> None:
    token = b64({"alg": "none", "typ": "at+jwt", "kid": tiers_key.kid}) + "." + b64(grant_claims()) + "."
    assert "'none' is not accepted" in refused(session, token)


def test_hs256_signed_with_the_public_key_is_refused(session: FakeSession, tiers_key: ECKey) -> None:
    # The classic confusion: the public key's bytes used as an HMAC secret (built by hand: joserfc refuses to).
    signing_input = b64({"alg": "HS256", "typ": "at+jwt", "kid": tiers_key.kid}) + "." + b64(grant_claims())
    mac = hmac.new(tiers_key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert "'HS256' is not accepted" in refused(session, token)


def test_another_curve_is_refused(session: FakeSession) -> None:
    key = ECKey.generate_key("P-384", parameters={"kid": "p384"}, private=True)
    token = jwt.encode({"alg": "ES384", "typ": "at+jwt", "kid": "p384"}, grant_claims(), key, algorithms=["ES384"])
    assert "'ES384' is not accepted" in refused(session, token)


def test_a_token_that_is_not_an_access_token_is_refused(session: FakeSession, tiers_key: ECKey) -> None:
    assert "not at+jwt" in refused(session, sign(tiers_key, grant_claims(), typ="JWT"))


def test_a_token_without_kid_is_refused_even_when_one_key_is_published(session: FakeSession, tiers_key: ECKey) -> None:
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, grant_claims(), tiers_key, algorithms=["ES256"])
    assert "no kid" in refused(session, token)


def test_a_key_embedded_in_the_header_is_ignored(session: FakeSession, tiers_key: ECKey) -> None:
    attacker = es256_key(tiers_key.kid or "")
    token = sign(attacker, grant_claims(), jwk=attacker.as_dict(private=False))
    assert "BadSignatureError" in refused(session, token)


def test_a_key_url_in_the_header_is_never_fetched(session: FakeSession) -> None:
    attacker = es256_key("attacker")
    token = sign(attacker, grant_claims(), jku="https://evil.example/jwks", x5u="https://evil.example/cert")
    assert "unknown key 'attacker'" in refused(session, token)
    assert {url for _, url, _ in session.calls} == {JWKS_URL}


def test_an_unknown_kid_refreshes_the_key_set_once(session: FakeSession, tiers_key: ECKey) -> None:
    check = verifier(session, jwks_refresh_interval=0)
    check.verify(sign(tiers_key, grant_claims()))
    rotated = es256_key("tiers-2026-02")
    session.published.append(rotated)
    assert check.verify(sign(rotated, grant_claims())).grant_id == GRANT_ID
    assert session.count("GET", JWKS_URL) == 2


def test_unknown_kids_do_not_make_it_hammer_tiers(session: FakeSession, tiers_key: ECKey) -> None:
    check = verifier(session)
    check.verify(sign(tiers_key, grant_claims()))
    for number in range(5):
        with pytest.raises(InvalidToken, match="unknown key"):
            check.verify(sign(es256_key(f"forged-{number}"), grant_claims()))
    assert session.count("GET", JWKS_URL) == 1


def test_only_public_p256_signing_keys_of_the_set_are_used(tiers_key: ECKey) -> None:
    leaked = es256_key("leaked")
    session = FakeSession(published=[tiers_key])
    original_get = session.get

    def with_odd_keys(url: str, **kwargs: Any) -> FakeResponse:
        response = original_get(url, **kwargs)
        response.body["keys"] += [
            {**leaked.as_dict(private=True)},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "note"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        ]
        return response

    session.get = with_odd_keys  # type: ignore[method-assign]
    assert "unknown key 'leaked'" in refused(session, sign(leaked, grant_claims()))
    assert verifier(session).verify(sign(tiers_key, grant_claims())).grant_id == GRANT_ID


# Claims are built when each test runs (not at collection), so that a long session cannot age them.
@pytest.mark.parametrize(
    ("claims", "why"),
    [
        (lambda now: grant_claims(aud="https://api.other.example"), "aud"),
        (lambda now: grant_claims(aud=ISSUER), "aud"),
        (lambda now: grant_claims(iss="https://evil.example"), "iss"),
        (lambda now: grant_claims(iss=None), "iss"),
        (lambda now: grant_claims(exp=now - 31), "ExpiredTokenError"),
        (lambda now: grant_claims(nbf=now + 120), "not yet valid"),
        (lambda now: grant_claims(iat=now + 120), "future"),
        (lambda now: grant_claims(jti=None), "jti"),
    ],
)
def test_claims_tiers_would_refuse_are_refused(
    session: FakeSession, tiers_key: ECKey, claims: Callable[[int], dict[str, object]], why: str
) -> None:
    assert why in refused(session, sign(tiers_key, claims(int(time.time()))))


def test_thirty_seconds_of_clock_skew_are_allowed(session: FakeSession, tiers_key: ECKey) -> None:
    now = int(time.time())
    claims = grant_claims(iat=now + 20, nbf=now + 20, exp=now - 20)
    assert verifier(session).verify(sign(tiers_key, claims)).grant_id == GRANT_ID


def test_a_token_for_tiers_own_api_is_not_a_grant(session: FakeSession, tiers_key: ECKey) -> None:
    claims = grant_claims(grant_id=None, authorization_details=None, purpose=None, scope="organisation")
    assert "not bound to a grant" in refused(session, sign(tiers_key, claims))


def test_a_grant_id_the_authorization_details_do_not_name_is_refused(session: FakeSession, tiers_key: ECKey) -> None:
    details = [{"type": "tiers_grant", "grant_id": "another", "purpose": "dpv:ScientificResearch"}]
    assert "authorization_details" in refused(session, sign(tiers_key, grant_claims(authorization_details=details)))


def test_a_dpop_bound_token_is_refused_rather_than_taken_as_bearer(session: FakeSession, tiers_key: ECKey) -> None:
    assert "DPoP" in refused(session, sign(tiers_key, grant_claims(cnf={"jkt": "abc"})))
    with pytest.raises(InvalidToken, match="DPoP"):
        verifier(session).verify(f"DPoP {sign(tiers_key, grant_claims())}")


@pytest.mark.parametrize("header", ["", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt"])
def test_malformed_authorization_is_refused(session: FakeSession, header: str) -> None:
    with pytest.raises(InvalidToken):
        verifier(session).verify(header)


def test_tiers_unreachable_without_any_key_is_unavailable_not_invalid(tiers_key: ECKey) -> None:
    session = FakeSession(published=[tiers_key], down=True)
    with pytest.raises(TiersUnavailable):
        verifier(session).verify(sign(tiers_key, grant_claims()))


def test_known_keys_keep_working_while_tiers_is_unreachable(session: FakeSession, tiers_key: ECKey) -> None:
    check = verifier(session, jwks_max_age=0)
    check.verify(sign(tiers_key, grant_claims()))
    session.down = True
    assert check.verify(sign(tiers_key, grant_claims())).grant_id == GRANT_ID
