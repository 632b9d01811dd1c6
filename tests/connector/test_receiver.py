"""The connector's event receiver: Tiers' SETs verified, forgeries refused, repeats caught (no Django)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from tests.connector.conftest import ISSUER, JWKS_URL, FakeSession, es256_key
from tiers_connector import DuplicateEvent, EventReceiver, InvalidEvent, MemorySeenStore

ENDPOINT = "https://hooks.volta.example/tiers"
MEDIA = "application/secevent+jwt"


def set_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ENDPOINT,
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "toe": int(time.time()) - 5,
        "events": {f"{ISSUER}/events/consent-withdrawn": {"purpose": "dpv:PublicBenefit", "subject_ref": "C-1"}},
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def signed(key: ECKey, claims: dict[str, Any], **header: Any) -> bytes:
    protected = {"alg": "ES256", "typ": "secevent+jwt", "kid": key.kid, **header}
    return jws.serialize_compact(protected, json.dumps(claims).encode(), key, algorithms=["ES256"]).encode()


def receiver(session: FakeSession, **options: Any) -> EventReceiver:
    return EventReceiver(ISSUER, JWKS_URL, ENDPOINT, session=session, **options)  # type: ignore[arg-type]


def refused(session: FakeSession, body: bytes, content_type: str = MEDIA) -> str:
    with pytest.raises(InvalidEvent) as refusal:
        receiver(session).receive(body, content_type)
    return refusal.value.reason


def test_a_set_tiers_signed_for_this_endpoint_is_received(session: FakeSession, tiers_key: ECKey) -> None:
    claims = set_claims()
    event = receiver(session).receive(signed(tiers_key, claims), "application/secevent+jwt; charset=utf-8")
    assert (event.jti, event.type) == (claims["jti"], "consent-withdrawn")
    assert event.payload == {"purpose": "dpv:PublicBenefit", "subject_ref": "C-1"}
    assert event.occurred_at == claims["toe"]


def test_a_repeat_raises_duplicate_event_with_the_event(session: FakeSession, tiers_key: ECKey) -> None:
    check = receiver(session)
    body = signed(tiers_key, set_claims())
    first = check.receive(body, MEDIA)
    with pytest.raises(DuplicateEvent) as repeat:
        check.receive(body, MEDIA)
    assert repeat.value.event.jti == first.jti


def test_a_persistent_store_can_be_a_callable(session: FakeSession, tiers_key: ECKey) -> None:
    seen: set[str] = set()

    def add(jti: str) -> bool:
        new = jti not in seen
        seen.add(jti)
        return new

    body = signed(tiers_key, set_claims())
    receiver(session, store=add).receive(body, MEDIA)
    with pytest.raises(DuplicateEvent):
        receiver(session, store=add).receive(body, MEDIA)  # another process, the same store


def test_the_memory_store_forgets_the_least_recent_first() -> None:
    store = MemorySeenStore(max_entries=2)
    assert store.add("a")
    assert store.add("b")
    assert not store.add("a")
    assert store.add("c")  # drops b, the least recently seen
    assert store.add("b")


def test_a_forged_signature_is_refused_and_not_remembered(session: FakeSession, tiers_key: ECKey) -> None:
    forger = es256_key(tiers_key.kid)  # the same kid, another key
    claims = set_claims()
    assert "signature" in refused(session, signed(forger, claims))
    receiver(session).receive(signed(tiers_key, claims), MEDIA)  # the real one still gets through once


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (set_claims(iss="https://evil.example"), "issuer"),
        (set_claims(aud="https://other.example/hook"), "audience"),
        (set_claims(iat=int(time.time()) + 3600), "future"),
        (set_claims(iat=None), "iat"),
        (set_claims(jti=None), "jti"),
        (set_claims(events={}), "exactly one"),
        (set_claims(events={"https://evil.example/events/x": {}}), "not one of Tiers"),
    ],
)
def test_claims_that_are_not_tiers_for_this_endpoint_are_refused(
    session: FakeSession, tiers_key: ECKey, claims: dict[str, Any], reason: str
) -> None:
    assert reason in refused(session, signed(tiers_key, claims))


def test_the_header_must_be_es256_secevent_with_a_published_kid(session: FakeSession, tiers_key: ECKey) -> None:
    assert "type" in refused(session, signed(tiers_key, set_claims(), typ="JWT"))
    stranger = es256_key("not-published")
    assert "unknown key" in refused(session, signed(stranger, set_claims()))
    unsigned = b".".join(
        [
            _b64({"alg": "none", "typ": "secevent+jwt", "kid": tiers_key.kid}),
            _b64(set_claims()),
            b"",
        ]
    )
    assert "algorithm" in refused(session, unsigned)


def test_another_content_type_or_garbage_is_refused(session: FakeSession, tiers_key: ECKey) -> None:
    assert "content type" in refused(session, signed(tiers_key, set_claims()), "application/json")
    assert "malformed" in refused(session, b"not a jws")


def _b64(data: dict[str, Any]) -> bytes:
    import base64

    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")
