"""The holder's client of Tiers: its token, decisions in batches, signed receipts, errors (no Django, no network)."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tests.connector.conftest import GRANT_ID, ISSUER, FakeResponse, FakeSession, es256_key
from tiers_connector import TiersClient, TiersError, TiersUnavailable

TOKEN_URL = f"{ISSUER}/oauth/token"
DECISIONS_URL = f"{ISSUER}/api/v1/decisions"
RECEIPTS_URL = f"{ISSUER}/api/v1/decisions/receipts"


@pytest.fixture
def holder_key() -> ECKey:
    return es256_key("volta-api-1")


class TinyTiers:
    """Answers the token endpoint and the decision API like Tiers: every even reference is included."""

    def __init__(self) -> None:
        self.issued = 0
        self.refuse_next_call = False

    def token(self, **kwargs: Any) -> FakeResponse:
        self.issued += 1
        return FakeResponse(200, {"access_token": f"token-{self.issued}", "token_type": "Bearer", "expires_in": 300})

    def decide(self, json: dict[str, Any], headers: dict[str, str], **kwargs: Any) -> FakeResponse:
        if self.refuse_next_call:
            self.refuse_next_call = False
            return FakeResponse(401, {"title": "invalid token"})
        subjects = [
            {"subject_ref": ref, "include": int(ref) % 2 == 0, "pseudonym": f"p{ref}" if int(ref) % 2 == 0 else None}
            for ref in json["subjects"]
        ]
        body = {
            "decision": f"d{len(subjects)}",
            "grant": json["grant"],
            "organisation": "marlieux",
            "purpose": "dpv:ScientificResearch",
            "fields": ["kwh"],
            "grant_ends_at": "2031-01-01T00:00:00Z",
            "subjects": subjects,
        }
        return FakeResponse(200, body)

    def session(self) -> FakeSession:
        return FakeSession(handlers={TOKEN_URL: self.token, DECISIONS_URL: self.decide})


def client_of(session: FakeSession, key: ECKey) -> TiersClient:
    return TiersClient(ISSUER + "/", "tiers_volta", private_jwk=key.as_dict(private=True), session=session)  # type: ignore[arg-type]


def test_decisions_come_in_batches_of_a_thousand_on_one_cached_token(holder_key: ECKey) -> None:
    tiers = TinyTiers()
    session = tiers.session()
    decision = client_of(session, holder_key).decide(GRANT_ID, [str(n) for n in range(2500)] + ["0"])
    assert [len(call[2]["json"]["subjects"]) for call in session.calls if call[1] == DECISIONS_URL] == [1000, 1000, 500]
    assert session.count("POST", TOKEN_URL) == 1
    assert len(decision.subjects) == 2500
    assert decision.included["42"] == "p42"
    assert "43" not in decision.included
    assert decision.fields == ["kwh"]
    assert decision.grant_ends_at is not None
    assert decision.grant_ends_at.year == 2031
    assert decision.decision_ids == ["d1000", "d1000", "d500"]


def test_the_token_request_authenticates_with_a_fresh_client_assertion(holder_key: ECKey) -> None:
    tiers = TinyTiers()
    session = tiers.session()
    client = client_of(session, holder_key)
    client.decide(GRANT_ID, ["2"])
    form = next(call[2]["data"] for call in session.calls if call[1] == TOKEN_URL)
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "decisions"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertion = jwt.decode(form["client_assertion"], holder_key, algorithms=["ES256"])
    assert assertion.header["kid"] == "volta-api-1"
    claims = assertion.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("tiers_volta", "tiers_volta", TOKEN_URL)
    assert 0 < claims["exp"] - time.time() <= 60
    assert claims["jti"]


def test_a_token_tiers_no_longer_takes_is_renewed_once(holder_key: ECKey) -> None:
    tiers = TinyTiers()
    session = tiers.session()
    client = client_of(session, holder_key)
    client.decide(GRANT_ID, ["2"])
    tiers.refuse_next_call = True
    client.decide(GRANT_ID, ["2"])
    bearers = [call[2]["headers"]["Authorization"] for call in session.calls if call[1] == DECISIONS_URL]
    assert bearers == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_token_is_renewed_before_it_expires(holder_key: ECKey) -> None:
    tiers = TinyTiers()
    session = tiers.session()
    client = TiersClient(ISSUER, "tiers_volta", private_jwk=holder_key, session=session, renew_before=300)  # type: ignore[arg-type]
    first = client.access_token()
    assert client.access_token() == first  # half the lifetime at least is used
    client._token = (first, time.monotonic() - 1)  # as if that time had passed
    assert client.access_token() != first


def test_a_client_secret_is_sent_as_http_basic() -> None:
    tiers = TinyTiers()
    session = tiers.session()
    TiersClient(ISSUER, "tiers_volta", client_secret="tcs_s3cret", session=session).access_token()  # type: ignore[arg-type]
    call = next(call for call in session.calls if call[1] == TOKEN_URL)
    assert call[2]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"tiers_volta:tcs_s3cret").decode()
    assert "client_assertion" not in call[2]["data"]


def test_the_receipt_is_what_tiers_verifies(holder_key: ECKey) -> None:
    client = client_of(FakeSession(), holder_key)
    compact = client.receipt(GRANT_ID, {"CUST-1": 2, "CUST-2": 1})
    header = jws.extract_compact(compact.encode()).headers()
    assert header == {"alg": "ES256", "kid": "volta-api-1", "typ": "tiers-access-receipt+jwt"}
    claims = jwt.decode(compact, holder_key, algorithms=["ES256"]).claims
    assert claims["iss"] == "tiers_volta"
    assert claims["aud"] == ISSUER
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["grant"] == GRANT_ID
    assert claims["records"] == 3
    assert claims["subjects"] == [{"subject_ref": "CUST-1", "records": 2}, {"subject_ref": "CUST-2", "records": 1}]
    assert client.receipt(GRANT_ID, {"CUST-1": 2}) != compact  # a new jti each time


def test_receipts_need_the_private_key() -> None:
    client = TiersClient(ISSUER, "tiers_volta", client_secret="tcs_s3cret")
    with pytest.raises(ValueError, match="private_jwk"):
        client.receipt(GRANT_ID, {"CUST-1": 1})


@pytest.mark.parametrize(
    "credentials",
    [{}, {"client_secret": "x", "private_jwk": es256_key("k").as_dict(private=True)}, {"private_jwk": {"kty": "EC"}}],
)
def test_credentials_are_checked_at_once(credentials: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="private_jwk"):
        TiersClient(ISSUER, "tiers_volta", **credentials)


def test_a_public_key_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="private"):
        TiersClient(ISSUER, "tiers_volta", private_jwk=es256_key("k").as_dict(private=False))


def test_a_problem_document_becomes_a_tiers_error(holder_key: ECKey) -> None:
    tiers = TinyTiers()
    session = tiers.session()
    problem = {"type": "https://tiers.example/problems/not-found", "title": "Not found", "status": 404, "detail": "No"}
    session.handlers[DECISIONS_URL] = lambda **kwargs: FakeResponse(404, problem)
    with pytest.raises(TiersError) as error:
        client_of(session, holder_key).decide(GRANT_ID, ["1"])
    assert (error.value.status, error.value.problem, error.value.detail) == (404, problem, "No")


def test_an_oauth_error_becomes_a_tiers_error(holder_key: ECKey) -> None:
    session = FakeSession(
        handlers={TOKEN_URL: lambda **kwargs: FakeResponse(401, {"error": "invalid_client", "error_description": "no"})}
    )
    with pytest.raises(TiersError, match="invalid_client"):
        client_of(session, holder_key).access_token()


def test_a_proxy_error_page_means_tiers_is_unavailable(holder_key: ECKey) -> None:
    session = FakeSession(handlers={TOKEN_URL: lambda **kwargs: FakeResponse(502, "<html>Bad gateway</html>")})
    with pytest.raises(TiersUnavailable):
        client_of(session, holder_key).access_token()


def test_the_verifier_it_builds_trusts_tiers_jwks(holder_key: ECKey) -> None:
    check = client_of(FakeSession(), holder_key).verifier("https://api.volta.example")
    assert (check.issuer, check.audience) == (ISSUER, "https://api.volta.example")
    assert check.client is not None
    assert check._keys.url == f"{ISSUER}/oauth/jwks"
