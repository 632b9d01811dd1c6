"""The resource check: what every protected API accepts, and the forgeries it refuses."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey
from rest_framework.test import APIClient

from broker import keys
from broker.oauth import services
from broker.oauth.tokens import forget_verified
from tests.broker.oauth.conftest import claims_of, register_secret_client, token_of

ME = "/api/v1/organisations/me"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def call(api: APIClient, token: str, scheme: str = "Bearer", **headers: str) -> Any:
    return api.get(ME, HTTP_AUTHORIZATION=f"{scheme} {token}", **headers)


def assert_refused(response: Any, error: str = "invalid_token") -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith(("Bearer ", "DPoP "))
    assert f'error="{error}"' in response["WWW-Authenticate"]


@pytest.fixture
def good(api: APIClient, secret_client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret)["access_token"]
    return {"token": token, "claims": claims_of(token), "client": client}


def forge(claims: dict[str, Any], *, header: dict[str, Any] | None = None, key: Any = None) -> str:
    """A token signed by the broker's own key unless another key is given: what an insider bug would mint."""
    protected = {"alg": "ES256", "typ": "at+jwt", "kid": keys.active_key("jws").kid, **(header or {})}
    payload = json.dumps(claims).encode()
    if key is None:
        return keys.sign_jws(payload, typ=protected["typ"]) if header is None else _sign(protected, payload, None)
    return _sign(protected, payload, key)


def _sign(protected: dict[str, Any], payload: bytes, key: Any) -> str:
    if key is None:
        raise ValueError("give a key")
    return jws.serialize_compact(protected, payload, key, algorithms=[protected["alg"]])


def test_the_calling_organisation_is_resolved_from_the_token(api: APIClient, good, data_user) -> None:  # type: ignore[no-untyped-def]
    response = call(api, good["token"])
    assert response.status_code == 200
    assert response.json()["slug"] == data_user.slug


def test_a_token_without_the_organisation_scope_cannot_read_it(api: APIClient, secret_client, grant) -> None:  # type: ignore[no-untyped-def]
    client, secret = secret_client
    token = token_of(api, client, secret, scope=f"grant:{grant.id}")["access_token"]
    assert call(api, token).status_code == 403


def test_alg_none_is_refused(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    header = b64url(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    payload = b64url(json.dumps(good["claims"]).encode())
    assert_refused(call(api, f"{header}.{payload}."))


def test_hs256_signed_with_the_public_key_is_refused(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    public = json.dumps(keys.jwks()["keys"][0]).encode()
    token = jws.serialize_compact(
        {"alg": "HS256", "typ": "at+jwt", "kid": keys.active_key("jws").kid},
        json.dumps(good["claims"]).encode(),
        OctKey.import_key(public),
        algorithms=["HS256"],
    )
    assert_refused(call(api, token))


def test_a_token_signed_by_another_key_is_refused(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    attacker = ECKey.generate_key("P-256", private=True)
    token = _sign(
        {"alg": "ES256", "typ": "at+jwt", "kid": keys.active_key("jws").kid},
        json.dumps(good["claims"]).encode(),
        attacker,
    )
    assert_refused(call(api, token))


def test_a_jwk_header_carrying_the_attackers_key_is_ignored(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    attacker = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "jwk": attacker.as_dict(private=False)}
    token = jws.serialize_compact(header, json.dumps(good["claims"]).encode(), attacker, algorithms=["ES256"])
    assert_refused(call(api, token))
    header = {"alg": "ES256", "typ": "at+jwt", "jku": "https://attacker.example/jwks", "kid": "x"}
    token = jws.serialize_compact(header, json.dumps(good["claims"]).encode(), attacker, algorithms=["ES256"])
    assert_refused(call(api, token))


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("exp", lambda c: int(time.time()) - 120),
        ("nbf", lambda c: int(time.time()) + 600),
        ("iat", lambda c: int(time.time()) + 600),
        ("aud", lambda c: "https://api.other.example"),
        ("iss", lambda c: "https://other-issuer.example"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-the-future", "another-audience", "another-issuer"],
)
def test_claims_that_do_not_hold_are_refused(api: APIClient, good, change: str, value) -> None:  # type: ignore[no-untyped-def]
    claims = {**good["claims"], change: value(good["claims"])}
    assert_refused(call(api, keys.sign_jws(json.dumps(claims).encode(), typ="at+jwt")))


@pytest.mark.parametrize("typ", ["JWT", "dpop+jwt", None])
def test_a_type_other_than_at_jwt_is_refused(api: APIClient, good, typ: str | None) -> None:  # type: ignore[no-untyped-def]
    assert_refused(call(api, keys.sign_jws(json.dumps(good["claims"]).encode(), typ=typ)))


def test_a_signed_token_tiers_never_issued_is_refused(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    claims = {**good["claims"], "jti": uuid.uuid4().hex}
    assert_refused(call(api, keys.sign_jws(json.dumps(claims).encode(), typ="at+jwt")))


def test_revoking_a_token_takes_effect_on_the_next_request(api: APIClient, good) -> None:  # type: ignore[no-untyped-def]
    assert call(api, good["token"]).status_code == 200
    services.token_revoke(actor=good["client"], jti=good["claims"]["jti"])
    assert_refused(call(api, good["token"]))


def test_disabling_the_client_takes_effect_on_the_next_request(api: APIClient, good, user_admin) -> None:  # type: ignore[no-untyped-def]
    assert call(api, good["token"]).status_code == 200
    services.client_disable(actor=user_admin, client=good["client"])
    assert_refused(call(api, good["token"]))


def test_excluding_the_organisation_takes_effect_on_the_next_request(api: APIClient, good, data_user, operator) -> None:  # type: ignore[no-untyped-def]
    from broker import services as broker_services

    assert call(api, good["token"]).status_code == 200
    broker_services.organisation_exclude(actor=operator, organisation=data_user, reason="re-identification attempt")
    assert_refused(call(api, good["token"]))


def listening() -> None:
    """Wait until this process hears liveness announcements (its listener starts on first use)."""
    from broker.oauth import tokens

    tokens._liveness_generation()
    deadline = time.monotonic() + 10
    while not tokens._feed.connected:
        assert time.monotonic() < deadline, "the liveness feed did not connect to Redis"
        time.sleep(0.05)


def test_a_remembered_token_state_spares_the_database_until_something_changes(  # type: ignore[no-untyped-def]
    api: APIClient, good, django_assert_num_queries
) -> None:
    from broker.oauth import tokens

    listening()
    assert call(api, good["token"]).status_code == 200
    with django_assert_num_queries(1):  # the view's own read of the organisation's members
        assert call(api, good["token"]).status_code == 200
    tokens.invalidate_liveness()
    with django_assert_num_queries(2):  # the token's state is asked again
        assert call(api, good["token"]).status_code == 200


def test_an_announcement_from_another_process_makes_this_one_ask_again(  # type: ignore[no-untyped-def]
    api: APIClient, good, django_assert_num_queries
) -> None:
    from django.core.cache import cache

    from broker.oauth import tokens
    from broker.redis_client import redis_client

    listening()
    assert call(api, good["token"]).status_code == 200
    before = tokens._feed.generation
    with redis_client() as client:
        client.publish(cache.make_and_validate_key(tokens.CHANNEL), "1")
    deadline = time.monotonic() + 5
    while tokens._feed.generation == before:
        assert time.monotonic() < deadline, "the announcement was not heard"
        time.sleep(0.01)
    with django_assert_num_queries(2):
        assert call(api, good["token"]).status_code == 200


def test_without_redis_every_request_asks_the_database(
    api: APIClient, good, monkeypatch, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    from broker.oauth import tokens

    monkeypatch.setattr(tokens, "_liveness_generation", lambda: None)
    assert call(api, good["token"]).status_code == 200  # the first call also loads the broker's keys
    for _ in range(2):
        with django_assert_num_queries(2):
            assert call(api, good["token"]).status_code == 200


def test_a_verified_token_is_not_verified_again_but_still_checked_for_revocation(
    api: APIClient, good, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from broker.oauth import tokens

    forget_verified()
    checks: list[str] = []
    original = tokens._check
    monkeypatch.setattr(tokens, "_check", lambda t, a: checks.append(t) or original(t, a))
    for _ in range(3):
        assert call(api, good["token"]).status_code == 200
    assert checks == [good["token"]]
    services.token_revoke(actor=good["client"], jti=good["claims"]["jti"])
    assert_refused(call(api, good["token"]))


def test_a_garbage_authorization_header_is_refused_cleanly(api: APIClient, db) -> None:  # type: ignore[no-untyped-def]
    for token in ("abc", "a.b.c", "....", "\u00e9t\u00e9.x.y"):
        assert_refused(call(api, token))


def test_each_oauth_client_has_its_own_rate_limit_bucket(api: APIClient, secret_client, user_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.throttling import UserRateThrottle

    client, secret = secret_client
    other, other_secret = register_secret_client(user_admin, data_user, name="other")
    first = token_of(api, client, secret)["access_token"]
    second = token_of(api, other, other_secret)["access_token"]
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = {**original, "user": "2/min"}
    try:
        assert [call(api, first).status_code for _ in range(3)] == [200, 200, 429]
        assert call(api, second).status_code == 200  # not throttled by the first client's calls
    finally:
        UserRateThrottle.THROTTLE_RATES = original
