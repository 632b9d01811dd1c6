"""Tiers connector: what a federated data holder's API needs to serve data users through Tiers.

- `TokenVerifier` checks a data user's access token (RFC 9068, ES256, Tiers'
  JWKS) and says which grant it carries.
- `TiersClient` is the holder's own client of Tiers: it asks which subjects a
  grant may include right now (`decide`) and reports each delivery with a
  signed access receipt (`report`).
- `EventReceiver` verifies the signed events (RFC 8417 SETs) Tiers sends to
  the holder's and data user's webhooks, and drops repeats by jti.

No web framework is assumed; see docs/connector.md.
"""

from __future__ import annotations

from tiers_connector.client import Decision, ReceiptResult, SubjectDecision, TiersClient
from tiers_connector.errors import ConnectorError, InvalidToken, TiersError, TiersUnavailable
from tiers_connector.receiver import DuplicateEvent, Event, EventReceiver, InvalidEvent, MemorySeenStore, SeenStore
from tiers_connector.verifier import GrantToken, TokenVerifier, bearer_token

__all__ = [
    "ConnectorError",
    "Decision",
    "DuplicateEvent",
    "Event",
    "EventReceiver",
    "GrantToken",
    "InvalidEvent",
    "InvalidToken",
    "MemorySeenStore",
    "ReceiptResult",
    "SeenStore",
    "SubjectDecision",
    "TiersClient",
    "TiersError",
    "TiersUnavailable",
    "TokenVerifier",
    "bearer_token",
]
