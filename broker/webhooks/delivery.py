"""Sending webhook deliveries: a signed SET per attempt, retried with backoff until 2xx or dead.

A worker claims a delivery with `SELECT … FOR UPDATE SKIP LOCKED` and leases it
for TIERS_WEBHOOK_LEASE_SECONDS; the POST happens after that short transaction commits, so no
row lock is held across the network. A worker killed mid-attempt leaves a lease
that runs out, and the scheduled `webhooks_retry` job queues the delivery again.
Only a 2xx answer marks a delivery delivered; receivers deduplicate on its jti.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from broker.keys import sign_jws
from broker.models import WebhookDelivery
from broker.observability import metrics
from consent.rights import RightsRecipient

SET_TYPE = "secevent+jwt"
MEDIA_TYPE = "application/secevent+jwt"
TIMEOUT_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 3600.0
RETRY_FOR = datetime.timedelta(hours=26)
REQUEUE_BATCH = 500
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

logger = logging.getLogger(__name__)
State = WebhookDelivery.State


def event_uri(event_type: str) -> str:
    """The member name of an event type in a SET's `events` claim."""
    return f"{settings.TIERS_BASE_URL}/events/{event_type}"


def set_claims(delivery: WebhookDelivery, url: str, *, now: float | None = None) -> dict[str, object]:
    """The claims of the SET telling this delivery's event (RFC 8417)."""
    return {
        "iss": settings.TIERS_BASE_URL,
        "aud": url,
        "iat": int(now if now is not None else time.time()),
        "jti": str(delivery.pk),
        "toe": int(delivery.occurred_at.timestamp()),
        "events": {event_uri(delivery.event_type): delivery.payload},
    }


def sign_set(delivery: WebhookDelivery, url: str) -> str:
    """The delivery's SET as a compact JWS, ES256 with the broker's active key."""
    claims = set_claims(delivery, url)
    return sign_jws(json.dumps(claims, separators=(",", ":")).encode(), typ=SET_TYPE)


def backoff_seconds(attempts: int) -> float:
    """Full jitter: uniform between 0 and min(cap, base × 2^(attempts − 1))."""
    ceiling = min(BACKOFF_CAP_SECONDS, settings.TIERS_WEBHOOK_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)


def retry_deadline(delivery: WebhookDelivery) -> datetime.datetime:
    """Attempts stop 26 hours after creation (or after an operator's replay)."""
    return max(delivery.created_at, delivery.replayed_at or delivery.created_at) + RETRY_FOR


# --- where a URL may point ---------------------------------------------------------------------


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def url_problem(url: str) -> str | None:
    """Why Tiers will not send to this URL, or None: HTTPS, or loopback HTTP where allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        if parts.username or parts.password:
            return "A webhook URL carries no user name or password."
        return None
    if parts.scheme == "http" and is_loopback(url) and settings.TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP:
        return None
    return "A webhook URL is https:// (plain http:// only to 127.0.0.1 or localhost, where allowed)."


def _address_problem(url: str) -> str | None:
    """Refuse a host that resolves to a private or local address (server-side request forgery)."""
    host = urlsplit(url).hostname or ""
    if is_loopback(url) and settings.TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"{host} resolves to a non-public address ({address})"
    return None


# --- claiming and sending ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one call of deliver() did: skipped, delivered, retry, or dead."""

    result: str
    status: int | None = None


def _claim(delivery_id: uuid.UUID | str) -> WebhookDelivery | None:
    """Lock the delivery if it is due and nobody holds it, lease it, count the attempt."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.due()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.leased_until = now + datetime.timedelta(seconds=settings.TIERS_WEBHOOK_LEASE_SECONDS)
        delivery.save(update_fields=["attempts", "leased_until"])
    return delivery


def deliver(delivery_id: uuid.UUID | str) -> Outcome:
    """Make one attempt at a due delivery; anything but a 2xx schedules the next one, or ends it."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return Outcome("skipped")
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        return _failed(delivery, None, "the endpoint is disabled", final=True)
    problem = url_problem(endpoint.url) or _address_problem(endpoint.url)
    if problem:
        return _failed(delivery, None, problem)
    try:
        response = requests.post(
            endpoint.url,
            data=sign_set(delivery, endpoint.url).encode("ascii"),
            headers={"Content-Type": MEDIA_TYPE, "Accept": "application/json"},
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,  # the body is not read: a receiver cannot make a worker download anything
        )
        response.close()
    except requests.RequestException as exc:
        return _failed(delivery, None, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return _delivered(delivery, response.status_code)
    return _failed(delivery, response.status_code, f"HTTP {response.status_code} {response.reason or ''}".strip())


def _delivered(delivery: WebhookDelivery, status: int) -> Outcome:
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk, state=State.PENDING).update(
            state=State.DELIVERED, delivered_at=timezone.now(), leased_until=None, last_status=status, last_error=""
        )
        RightsRecipient.objects.filter(delivery=delivery, state=RightsRecipient.State.PENDING).update(
            state=RightsRecipient.State.FORWARDED
        )
    return Outcome("delivered", status)


def _failed(delivery: WebhookDelivery, status: int | None, error: str, *, final: bool = False) -> Outcome:
    """Schedule the next attempt with backoff, or mark the delivery dead once its time is up."""
    now = timezone.now()
    deadline = retry_deadline(delivery)
    next_at = now + datetime.timedelta(seconds=backoff_seconds(delivery.attempts))
    dead = final or now >= deadline
    changes: dict[str, object] = {"leased_until": None, "last_status": status, "last_error": error[:2000]}
    if dead:
        changes["state"] = State.DEAD
    else:
        changes["next_attempt_at"] = min(next_at, deadline)  # one last attempt at the deadline
    WebhookDelivery.objects.filter(pk=delivery.pk, state=State.PENDING).update(**changes)
    metrics.WEBHOOK_FAILURES.labels(reason=metrics.webhook_failure_reason(status, error, final=final)).inc()
    logger.info("webhook delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, error)
    return Outcome("dead" if dead else "retry", status)


# --- queueing ------------------------------------------------------------------------------------


def enqueue(ids: Iterable[uuid.UUID | str]) -> None:
    """After the commit, ask workers to send these deliveries; a lost message is re-queued by the retry job."""
    wanted = [str(delivery_id) for delivery_id in ids]
    if wanted:
        transaction.on_commit(lambda: _publish(wanted), robust=True)


def _publish(ids: list[str]) -> int:
    from broker.webhooks.tasks import webhook_deliver

    sent = 0
    for delivery_id in ids:
        try:
            webhook_deliver.delay(delivery_id)
        except Exception:
            logger.warning("webhook delivery %s not queued now; the retry job will queue it", delivery_id)
            break
        sent += 1
    return sent


def requeue_due(limit: int = REQUEUE_BATCH) -> int:
    """Queue every due pending delivery: retries whose time has come, and those a dead worker left."""
    ids = list(WebhookDelivery.objects.due().order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return _publish([str(delivery_id) for delivery_id in ids])
