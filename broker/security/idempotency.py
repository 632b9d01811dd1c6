"""`Idempotency-Key` on the API's creating requests: a retry gets the first answer, not a second resource.

A middleware, so that the creating views need not know: it acts on POSTs to the paths in
CREATING_PATHS only. Per caller (`user:<id>` for a session, `client:<client_id>` for a token) and
key, it keeps a digest of the request and the response it got, sealed (a new client's secret is
in one), for IDEMPOTENCY_TTL. The same key and request again: the stored response, with
`Idempotency-Replayed: true`. The same key with another request: 422. Two at once: on PostgreSQL
the second waits for the first (an advisory lock on caller and key), then gets its answer.
Server errors (5xx) and answers that a retry may change (401, 403, 408, 429) are not kept.
Uploads are not covered: their bodies stream to disk and are never held whole.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from broker import keys
from broker.oauth import tokens
from broker.problems import problem_response
from broker.security.models import IdempotentResponse

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
CREATING_PATHS = re.compile(
    r"^/api/v1/(?:organisations|datasets|agreements|access-requests|clients|link-codes|consent-modules"
    r"|me/consents|me/rights|webhooks)/$"
    r"|^/api/v1/agreements/[^/]+/versions$"
)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as the IETF draft's examples
IDEMPOTENCY_TTL = datetime.timedelta(hours=24)
NOT_KEPT = frozenset({401, 403, 408, 429})
LOCK_WAIT_SECONDS = 30.0


def caller_of(request: HttpRequest) -> str | None:
    """Who is asking, as the API will see it: the token's client first, else the session's user."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "dpop") and token.strip():
        try:
            claims = tokens.verify(token.strip(), audience=tokens.tiers_audience())
            return f"client:{tokens.live_caller(claims).client.client_id}"
        except tokens.InvalidToken:
            return None  # the view refuses it
    if request.headers.get("Authorization"):
        return None
    user = getattr(request, "user", None)
    return f"user:{user.pk}" if user is not None and user.is_authenticated and user.pk else None


def _digest(request: HttpRequest) -> str:
    hasher = hashlib.sha256()
    for part in (request.method or "", request.get_full_path(), request.content_type or ""):
        hasher.update(part.encode() + b"\0")
    hasher.update(request.body)
    return hasher.hexdigest()


def aad_of(caller: str, key: str) -> bytes:
    return f"tiers-idempotency:{caller}:{key}".encode()


@contextlib.contextmanager
def _serialised(caller: str, key: str) -> Iterator[bool]:
    """Hold a session-level advisory lock on (caller, key) on PostgreSQL; yields False on timeout."""
    if connection.vendor != "postgresql":
        yield True
        return
    lock_id = int.from_bytes(hashlib.sha256(f"{caller}\0{key}".encode()).digest()[:8], "big", signed=True)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                yield False
                return
            time.sleep(0.05)
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        except Exception:
            logger.warning("idempotency lock not released: the connection is gone, and the lock with it")


def _replay(stored: IdempotentResponse) -> HttpResponse:
    body = keys.unseal(bytes(stored.body), aad=aad_of(stored.caller, stored.key))
    response = HttpResponse(body, status=stored.status, content_type=stored.content_type)
    if stored.location:
        response["Location"] = stored.location
    response["Idempotency-Replayed"] = "true"
    return response


def _keep(caller: str, key: str, digest: str, response: HttpResponse) -> None:
    now = timezone.now()
    expired = IdempotentResponse.objects.filter(expires_at__lte=now).values("pk")[:100]
    IdempotentResponse.objects.filter(pk__in=expired).delete()
    IdempotentResponse.objects.update_or_create(
        caller=caller,
        key=key,
        defaults={
            "request_digest": digest,
            "status": response.status_code,
            "content_type": response.get("Content-Type", "application/json"),
            "body": keys.seal(response.content, aad=aad_of(caller, key)),
            "location": response.get("Location", "")[:500],
            "created_at": now,
            "expires_at": now + IDEMPOTENCY_TTL,
        },
    )


class IdempotencyMiddleware:
    """Replays the stored answer to a repeated creating request; after authentication and the second factor."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or not CREATING_PATHS.match(request.path):
            return self.get_response(request)
        if not _KEY.match(key):
            return problem_response(
                400, detail=f"{HEADER} must be 1 to 255 printable ASCII characters.", slug="idempotency-key"
            )
        caller = caller_of(request)
        if caller is None:
            return self.get_response(request)  # nobody to keep it for: the view answers (401 or as it may)
        digest = _digest(request)
        with _serialised(caller, key) as locked:
            if not locked:
                return problem_response(
                    409, detail=f"A request with this {HEADER} is still being handled.", slug="idempotency-busy"
                )
            stored = IdempotentResponse.objects.filter(caller=caller, key=key, expires_at__gt=timezone.now()).first()
            if stored is not None:
                if stored.request_digest != digest:
                    return problem_response(
                        422,
                        detail=f"This {HEADER} was used for another request: use a new key for a new request.",
                        slug="idempotency-key-reused",
                    )
                return _replay(stored)
            response = self.get_response(request)
            if not response.streaming and response.status_code < 500 and response.status_code not in NOT_KEPT:
                _keep(caller, key, digest, response)
            return response
