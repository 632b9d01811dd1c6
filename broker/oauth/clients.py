"""The token endpoint's clients, remembered by each process between liveness announcements.

Remembering a client spares the token endpoint a read of the client row per token. It is a
shortcut, not a source of truth: the token's own insert confirms, in the same statement, that
the client is still enabled, its organisation verified and its credentials the ones the request
was authenticated with (services.token_issue). A change made anywhere is therefore seen by the
next token request even while its announcement is still on the way; the announcements only keep
what is remembered current, so that such a request rarely has to be answered twice.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from broker.oauth import tokens
from broker.oauth.models import OAuthClient

CACHE_SIZE = 1_000

_remembered: OrderedDict[str, tuple[OAuthClient, int, float]] = OrderedDict()
_lock = threading.Lock()


def client_fresh(client_id: str) -> OAuthClient | None:
    """The client as the database has it now; remembered while it is active, forgotten otherwise."""
    # Read before the row: an announcement heard during the read makes the entry stale at once.
    generation = tokens.liveness_generation()
    found = OAuthClient.objects.select_related("organisation").filter(client_id=client_id).order_by()[:1]
    client = found[0] if found else None
    with _lock:
        if client is None or not client.is_active or generation is None:
            _remembered.pop(client_id, None)
            return client
        _remembered[client_id] = (client, generation, time.monotonic())
        _remembered.move_to_end(client_id)
        while len(_remembered) > CACHE_SIZE:
            _remembered.popitem(last=False)
    return client


def client_remembered(client_id: str) -> OAuthClient | None:
    """The client as this process last read it, if no announcement came since and for 30 s at most."""
    generation = tokens.liveness_generation()
    if generation is None:
        return None  # not listening (no Redis): every request reads the row
    with _lock:
        entry = _remembered.get(client_id)
    if entry is None:
        return None
    client, seen_generation, seen_at = entry
    if seen_generation != generation or time.monotonic() - seen_at >= tokens.LIVENESS_MAX_AGE_SECONDS:
        return None
    return client


def client_forget(client_id: str) -> None:
    """Forget one client, whose row turned out to have changed."""
    with _lock:
        _remembered.pop(client_id, None)


def forget_clients() -> None:
    """Forget every client (tests)."""
    with _lock:
        _remembered.clear()
