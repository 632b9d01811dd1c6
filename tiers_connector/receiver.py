"""Receiving Tiers' webhooks: Security Event Tokens (RFC 8417) verified against Tiers' JWK Set.

Tiers POSTs each event as `application/secevent+jwt`: a compact JWS, ES256, `typ`
`secevent+jwt`, signed with a key published at `/oauth/jwks`. The claims are
`iss` (Tiers' base URL), `aud` (your endpoint URL), `iat`, `jti` (the same on
every retry of one delivery), `toe` (when the event happened) and `events`,
one member named `<iss>/events/<event-type>`.

    receiver = EventReceiver("https://tiers.example", "https://tiers.example/oauth/jwks",
                             "https://hooks.volta.example/tiers")

    def handle(body: bytes, content_type: str) -> int:
        try:
            event = receiver.receive(body, content_type)
        except DuplicateEvent:
            return 202          # seen already: Tiers retried; acknowledge again
        except InvalidEvent as refused:
            log.warning("event refused: %s", refused.reason)
            return 400
        act_on(event.type, event.payload)   # before answering: a 2xx means "handled"
        return 202

Replays are caught by `seen(jti)` over a store: an in-memory LRU by default
(one process, forgotten on restart), or any `SeenStore` (a database table with
a unique jti, Redis SET NX…) for several processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import requests
from joserfc import jws
from joserfc.errors import JoseError

from tiers_connector.errors import ConnectorError
from tiers_connector.verifier import ALGORITHMS, LEEWAY_SECONDS, _KeyCache, fetch_jwks

MEDIA_TYPE = "application/secevent+jwt"
SET_TYPES = ("secevent+jwt", "application/secevent+jwt")
MAX_BODY_BYTES = 256 * 1024


class InvalidEvent(ConnectorError):
    """The body is not a SET Tiers signed for this endpoint; `reason` says why (log it, answer 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DuplicateEvent(ConnectorError):
    """A valid SET whose jti was seen already: Tiers retried it. Acknowledge it again; do not act twice."""

    def __init__(self, event: Event) -> None:
        super().__init__(f"event {event.jti} was received already")
        self.event = event


@dataclass(frozen=True)
class Event:
    """A verified event: its type (e.g. `consent-withdrawn`), its payload, its jti and times."""

    jti: str
    type: str
    uri: str
    payload: dict[str, Any]
    issued_at: int
    occurred_at: int | None
    claims: dict[str, Any]


@runtime_checkable
class SeenStore(Protocol):
    """Remembers jtis: `add` returns True the first time it is given one, False afterwards."""

    def add(self, jti: str) -> bool: ...


class MemorySeenStore:
    """The last `max_entries` jtis of this process, least recently seen dropped first. Thread-safe."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, jti: str) -> bool:
        with self._lock:
            if jti in self._seen:
                self._seen.move_to_end(jti)
                return False
            self._seen[jti] = None
            if len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True


class _CallableStore:
    def __init__(self, function: Callable[[str], bool]) -> None:
        self._function = function

    def add(self, jti: str) -> bool:
        return bool(self._function(jti))


class EventReceiver:
    """Verifies and deduplicates the SETs Tiers sends to one endpoint (its URL is the audience).

    Thread-safe; build one per process and share it. `store` is a `SeenStore`, or a
    callable taking a jti and returning True when it is new.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str,
        audience: str,
        *,
        store: SeenStore | Callable[[str], bool] | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        leeway: int = LEEWAY_SECONDS,
        jwks_max_age: float = 300.0,
        jwks_refresh_interval: float = 30.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        if store is None:
            self.store: SeenStore = MemorySeenStore()
        elif isinstance(store, SeenStore):
            self.store = store
        else:
            self.store = _CallableStore(store)
        self._keys = _KeyCache(
            jwks_url,
            lambda url: fetch_jwks(url, session=session, timeout=timeout),
            max_age=jwks_max_age,
            refresh_interval=jwks_refresh_interval,
        )

    def receive(self, body: bytes, content_type: str) -> Event:
        """The verified event; DuplicateEvent if its jti was seen, InvalidEvent if it is not Tiers' SET for us."""
        event = self.verify(body, content_type)
        if not self.seen(event.jti):
            return event
        raise DuplicateEvent(event)

    def seen(self, jti: str) -> bool:
        """Whether this jti came before; records it if not."""
        return not self.store.add(jti)

    def verify(self, body: bytes, content_type: str) -> Event:
        """Check the SET without recording its jti."""
        if content_type.split(";")[0].strip().lower() != MEDIA_TYPE:
            raise InvalidEvent(f"content type {content_type!r} is not {MEDIA_TYPE}")
        if len(body) > MAX_BODY_BYTES:
            raise InvalidEvent("body too large")
        token = body.strip()
        key = self._keys.signer_of(token, types=SET_TYPES, malformed="malformed JWS", refuse=InvalidEvent)
        try:
            verified = jws.deserialize_compact(token, key, algorithms=ALGORITHMS)
            claims = json.loads(verified.payload)
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidEvent(f"signature or payload refused: {type(exc).__name__}: {exc}") from exc
        return self._event(claims)

    def _event(self, claims: Any) -> Event:
        if not isinstance(claims, dict):
            raise InvalidEvent("the claims are not a JSON object")
        if claims.get("iss") != self.issuer:
            raise InvalidEvent(f"issuer {claims.get('iss')!r} is not {self.issuer!r}")
        audience = claims.get("aud")
        if audience != self.audience and not (isinstance(audience, list) and self.audience in audience):
            raise InvalidEvent(f"audience {audience!r} is not this endpoint")
        issued_at = claims.get("iat")
        if not isinstance(issued_at, int) or isinstance(issued_at, bool):
            raise InvalidEvent("no iat")
        if issued_at > time.time() + self.leeway:
            raise InvalidEvent("issued in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidEvent("no jti")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            raise InvalidEvent("events must name exactly one event")
        ((uri, payload),) = events.items()
        prefix = f"{self.issuer}/events/"
        if not isinstance(uri, str) or not uri.startswith(prefix) or not isinstance(payload, dict):
            raise InvalidEvent(f"event {uri!r} is not one of Tiers' events")
        toe = claims.get("toe")
        return Event(
            jti=jti,
            type=uri[len(prefix) :],
            uri=uri,
            payload=payload,
            issued_at=issued_at,
            occurred_at=toe if isinstance(toe, int) else None,
            claims=claims,
        )

    def forget_keys(self) -> None:
        """Drop the cached JWK Set."""
        self._keys.forget()
