"""Keys, tokens and a fake HTTP session for unit tests of the connector: no Django, no network."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

ISSUER = "https://tiers.example"
AUDIENCE = "https://api.volta.example"
JWKS_URL = f"{ISSUER}/oauth/jwks"
GRANT_ID = "0f6a2c1e-5b0d-4c4a-9f0e-3a1b2c3d4e5f"


def es256_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, private=True)


def grant_claims(**overrides: Any) -> dict[str, Any]:
    """What Tiers puts in a data user's token for a federated grant."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "tiers_city",
        "aud": AUDIENCE,
        "client_id": "tiers_city",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": f"grant:{GRANT_ID}",
        "organisation": "marlieux",
        "grant_id": GRANT_ID,
        "purpose": "dpv:ScientificResearch",
        "authorization_details": [{"type": "tiers_grant", "grant_id": GRANT_ID, "purpose": "dpv:ScientificResearch"}],
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(key: ECKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header}, claims, key, algorithms=["ES256"])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class FakeResponse:
    status_code: int
    body: Any
    url: str = ""
    reason: str = ""

    def json(self) -> Any:
        if isinstance(self.body, str):
            raise ValueError("not JSON")
        return self.body

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    def raise_for_status(self) -> None:
        import requests

        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}")


@dataclass
class FakeSession:
    """Answers GETs from a JWK Set it holds and POSTs from handlers by URL; remembers every call."""

    published: list[ECKey] = field(default_factory=list)
    handlers: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        import requests

        self.calls.append(("GET", url, kwargs))
        if self.down:
            raise requests.ConnectionError("connection refused")
        return FakeResponse(200, {"keys": [key.as_dict(private=False) for key in self.published]}, url=url)

    def post(self, url: str, **kwargs: Any) -> FakeResponse:
        self.calls.append(("POST", url, kwargs))
        response: FakeResponse = self.handlers[url](**kwargs)
        response.url = url
        return response

    def count(self, method: str, url: str) -> int:
        return sum(1 for call in self.calls if call[0] == method and call[1] == url)


@pytest.fixture
def tiers_key() -> ECKey:
    return es256_key("tiers-2026-01")


@pytest.fixture
def session(tiers_key: ECKey) -> FakeSession:
    return FakeSession(published=[tiers_key])
