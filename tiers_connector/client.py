"""The holder's own client of Tiers: its access token, consent decisions, signed access receipts.

The client authenticates with client credentials (RFC 6749 §4.4), either a
private key (private_key_jwt, RFC 7523; needed to sign receipts) or a client
secret (client_secret_basic), and keeps its access token (scope `decisions`)
until shortly before it expires. One instance is safe to share between threads.
"""

from __future__ import annotations

import base64
import datetime
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

from tiers_connector.errors import TiersError, TiersUnavailable
from tiers_connector.verifier import TokenVerifier

SCOPE = "decisions"
MAX_DECISION_SUBJECTS = 1000  # what one decision request may ask about (Tiers' limit)
RECEIPT_TYPE = "tiers-access-receipt+jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 60
SIGNING_ALGORITHMS = ("ES256", "PS256", "RS256")  # what Tiers accepts that joserfc signs without a warning


@dataclass(frozen=True)
class SubjectDecision:
    """Whether one of the holder's subjects may be included, and under which pseudonym."""

    subject_ref: str
    include: bool
    pseudonym: str | None


@dataclass(frozen=True)
class Decision:
    """Tiers' answer for a grant at this moment: what to deliver, and about whom."""

    grant_id: str
    organisation: str
    purpose: str
    fields: list[str]
    grant_ends_at: datetime.datetime | None
    subjects: list[SubjectDecision]
    decision_ids: list[str] = field(default_factory=list)

    @property
    def included(self) -> dict[str, str]:
        """The subjects to include, each with the pseudonym to deliver instead of its reference."""
        return {s.subject_ref: s.pseudonym for s in self.subjects if s.include and s.pseudonym is not None}


@dataclass(frozen=True)
class ReceiptResult:
    """What Tiers recorded from a receipt: the delivery's id and its counts."""

    delivery: str
    subjects: int
    records: int


def _signing_algorithm(key: Key) -> str:
    alg = key.get("alg")
    if isinstance(alg, str):
        if alg not in SIGNING_ALGORITHMS:
            raise ValueError(f"Sign with one of {', '.join(SIGNING_ALGORITHMS)}, not {alg}.")
        return alg
    if isinstance(key, ECKey) and key.get("crv") == "P-256":
        return "ES256"
    if isinstance(key, RSAKey):
        return "PS256"
    raise ValueError("Use an EC P-256 key (ES256, recommended) or an RSA key (PS256).")


def _private_key(jwk: Key | Mapping[str, Any]) -> Key:
    try:
        key = import_key(dict(jwk)) if isinstance(jwk, Mapping) else jwk
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"private_jwk is not a valid JWK: {exc}") from exc
    if not key.is_private:
        raise ValueError("private_jwk must hold the private key (its public half is registered at Tiers).")
    key.ensure_kid()
    return key


class TiersClient:
    """A holder API's client of Tiers, with its own credentials (scope `decisions`)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        private_jwk: Key | Mapping[str, Any] | None = None,
        client_secret: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        renew_before: float = 60.0,
    ) -> None:
        """`base_url` is Tiers' (the issuer, e.g. https://tiers.example); give private_jwk or client_secret."""
        if (private_jwk is None) == (client_secret is None):
            raise ValueError("Give exactly one of private_jwk (private_key_jwt) and client_secret.")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.token_endpoint = f"{self.base_url}/oauth/token"
        self.key = _private_key(private_jwk) if private_jwk is not None else None
        self.algorithm = _signing_algorithm(self.key) if self.key is not None else None
        self._secret = client_secret
        self._session = session or requests.Session()
        self._timeout = timeout
        self._renew_before = renew_before
        self._token: tuple[str, float] | None = None  # the access token and when to renew it (monotonic)
        self._lock = threading.Lock()

    # --- the holder's API side ------------------------------------------------------------------

    def verifier(self, audience: str, **options: Any) -> TokenVerifier:
        """A TokenVerifier for data users' tokens meant for `audience` (the holder API's base URL)."""
        return TokenVerifier(self.base_url, audience, f"{self.base_url}/oauth/jwks", client=self, **options)

    def decide(self, grant_id: str, subject_refs: Iterable[str]) -> Decision:
        """Which of these subjects the grant may include now (asked 1000 at a time)."""
        refs = list(dict.fromkeys(str(ref) for ref in subject_refs))
        if not refs:
            raise ValueError("Ask about at least one subject.")
        answers = [
            self._call("/api/v1/decisions", {"grant": grant_id, "subjects": refs[at : at + MAX_DECISION_SUBJECTS]})
            for at in range(0, len(refs), MAX_DECISION_SUBJECTS)
        ]
        first = answers[0]
        ends_at = first.get("grant_ends_at")
        return Decision(
            grant_id=str(first["grant"]),
            organisation=str(first["organisation"]),
            purpose=str(first["purpose"]),
            fields=[str(name) for name in first["fields"]],
            grant_ends_at=datetime.datetime.fromisoformat(ends_at) if isinstance(ends_at, str) else None,
            subjects=[
                SubjectDecision(str(s["subject_ref"]), bool(s["include"]), s.get("pseudonym"))
                for answer in answers
                for s in answer["subjects"]
            ],
            decision_ids=[str(answer["decision"]) for answer in answers],
        )

    def receipt(self, grant_id: str, subjects: Mapping[str, int], *, records: int | None = None) -> str:
        """A signed access receipt: the grant, and each subject delivered with its number of records."""
        if self.key is None or self.algorithm is None:
            raise ValueError("Receipts are signed: the client needs its private_jwk (a private_key_jwt client).")
        counts = {str(ref): int(number) for ref, number in subjects.items()}
        claims = {
            "iss": self.client_id,
            "aud": self.base_url,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
            "grant": str(grant_id),
            "records": sum(counts.values()) if records is None else int(records),
            "subjects": [{"subject_ref": ref, "records": number} for ref, number in counts.items()],
        }
        header = {"alg": self.algorithm, "kid": self.key.kid, "typ": RECEIPT_TYPE}
        return jwt.encode(header, claims, self.key, algorithms=[self.algorithm])

    def report(self, grant_id: str, subjects: Mapping[str, int], *, records: int | None = None) -> ReceiptResult:
        """Report one delivery to Tiers with a signed receipt; the subjects' citizens will see it."""
        return self.submit_receipt(self.receipt(grant_id, subjects, records=records))

    def submit_receipt(self, compact: str) -> ReceiptResult:
        """Send a receipt already signed (a retry after a network failure sends the same one)."""
        answer = self._call("/api/v1/decisions/receipts", {"receipt": compact})
        return ReceiptResult(str(answer["delivery"]), int(answer["subjects"]), int(answer["records"]))

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: what Tiers knows of a token now (`{"active": false}` once revoked or ended)."""
        response = self._post(
            f"{self.base_url}/oauth/introspect",
            data={"token": token, "token_type_hint": "access_token", **self._assertion_form()},
            headers=self._basic_header(),
        )
        return _json_or_raise(response)

    # --- the client's own access token ----------------------------------------------------------

    def access_token(self) -> str:
        """The client's access token, fetched when missing or about to expire."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            answer = _json_or_raise(
                self._post(
                    self.token_endpoint,
                    data={"grant_type": "client_credentials", "scope": SCOPE, **self._assertion_form()},
                    headers=self._basic_header(),
                )
            )
            lifetime = float(answer.get("expires_in", 300))
            renew_at = time.monotonic() + max(lifetime - self._renew_before, lifetime / 2)
            self._token = (str(answer["access_token"]), renew_at)
            return self._token[0]

    def forget_token(self) -> None:
        with self._lock:
            self._token = None

    def close(self) -> None:
        """Close the HTTP connections kept open to Tiers."""
        self._session.close()

    def __enter__(self) -> TiersClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the access token; once more with a new token if Tiers no longer takes it."""
        for attempt in (1, 2):
            token = self.access_token()
            response = self._post(
                f"{self.base_url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            if response.status_code == 401 and attempt == 1:
                self._drop(token)
                continue
            break
        return _json_or_raise(response)

    def _drop(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _assertion_form(self) -> dict[str, str]:
        if self.key is None or self.algorithm is None:
            return {}
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        assertion = jwt.encode({"alg": self.algorithm, "kid": self.key.kid}, claims, self.key, [self.algorithm])
        return {"client_id": self.client_id, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    def _basic_header(self) -> dict[str, str]:
        if self._secret is None:
            return {}
        pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"  # RFC 6749 §2.3.1
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.post(url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise TiersUnavailable(f"POST {url}", exc) from exc


def _json_or_raise(response: requests.Response) -> dict[str, Any]:
    """The JSON body of a success; TiersError with the problem document otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict):
            raise TiersError(response.status_code, body)
        if response.status_code >= 500:  # a proxy's error page: Tiers is not answering
            raise TiersUnavailable(str(response.url), ValueError(f"HTTP {response.status_code}"))
        raise TiersError(response.status_code, {"title": response.reason or "error", "detail": response.text[:500]})
    if not isinstance(body, dict):
        raise TiersError(response.status_code, {"title": "unexpected answer", "detail": response.text[:500]})
    return body
