"""State changes of webhooks: endpoints, deliveries written for an event, replays, attestations."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from broker import audit, policy
from broker.errors import Conflict, Forbidden, InvalidInput
from broker.models import OAuthClient, Organisation, User, WebhookDelivery, WebhookEndpoint
from broker.oauth.tokens import ClientPrincipal
from broker.policy import OrgAction, Principal
from broker.webhooks import delivery as sending
from consent.rights import RightsRecipient

MAX_ENDPOINTS = 5
# The events a data user may attest a deletion for: those that ask it to stop and delete.
DELETION_EVENTS = ("consent-withdrawn", "consent-paused", "consent-expired", "rights-erasure")
State = WebhookDelivery.State


def actor_of(by: Principal) -> User | OAuthClient:
    """Who an audit entry names: the person, or the organisation's OAuth client."""
    if isinstance(by, ClientPrincipal):
        return by.caller.client
    if isinstance(by, User):
        return by
    raise Forbidden("Log in first.")


# --- endpoints -----------------------------------------------------------------------------------


def _require_own(by: Principal, organisation: Organisation) -> None:
    """MANAGE_WEBHOOKS, and in the organisation's own name: an operator replays and disables, never
    registers where an organisation's events go nor attests or acknowledges in its place."""
    policy.require(by, OrgAction.MANAGE_WEBHOOKS, organisation)
    if isinstance(by, User) and by.is_operator and policy.role_in(by, organisation) is None:
        raise Forbidden("Operators do not act in an organisation's place.")


def endpoint_register(*, by: Principal, organisation: Organisation, url: str) -> WebhookEndpoint:
    """Register where the organisation receives its events: HTTPS (loopback HTTP only where allowed)."""
    _require_own(by, organisation)
    url = url.strip()
    problem = sending.url_problem(url)
    if problem:
        raise InvalidInput(problem, errors=[{"field": "url", "detail": problem}])
    actor = actor_of(by)
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)  # one registration at a time
        live = WebhookEndpoint.objects.filter(organisation=organisation, enabled=True)
        if live.filter(url=url).exists():
            raise Conflict("This URL is registered already.")
        if live.count() >= MAX_ENDPOINTS:
            raise Conflict(f"An organisation has at most {MAX_ENDPOINTS} enabled endpoints; disable one first.")
        endpoint = WebhookEndpoint.objects.create(organisation=organisation, url=url, created_by=audit.actor_ref(actor))
        audit.record(verb="webhook.registered", actor=actor, subject=organisation, details={"url": url})
    return endpoint


def endpoint_disable(*, by: Principal, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Stop sending to an endpoint; its pending deliveries end as dead at their next attempt."""
    policy.require(by, OrgAction.MANAGE_WEBHOOKS, endpoint.organisation)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().select_related("organisation").get(pk=endpoint.pk)
        if not endpoint.enabled:
            return endpoint
        endpoint.enabled = False
        endpoint.disabled_at = timezone.now()
        endpoint.save(update_fields=["enabled", "disabled_at"])
        audit.record(
            verb="webhook.disabled", actor=actor_of(by), subject=endpoint.organisation, details={"url": endpoint.url}
        )
    return endpoint


# --- deliveries ----------------------------------------------------------------------------------


def deliveries_write(
    *,
    organisation_id: int,
    event_type: str,
    payload: Mapping[str, Any],
    occurred_at: datetime.datetime,
    source_event: int | None,
) -> list[WebhookDelivery]:
    """One pending delivery per enabled endpoint of the organisation, in the caller's transaction.

    With a source event, a second call for the same event, type and endpoint adds
    nothing (the unique constraint), so an outbox handler may run it twice.
    Returns the rows this call created; they are queued once the transaction commits.
    """
    endpoints = WebhookEndpoint.objects.filter(organisation_id=organisation_id, enabled=True).order_by("created_at")
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event_type=event_type,
            payload=dict(payload),
            occurred_at=occurred_at,
            source_event=source_event,
        )
        for endpoint in endpoints
    ]
    if not rows:
        return []
    if source_event is None:
        created = WebhookDelivery.objects.bulk_create(rows)
    else:
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        # Rows a previous run wrote keep their own ids; only this run's are "created" here.
        created = list(WebhookDelivery.objects.filter(pk__in=[row.pk for row in rows]))
    sending.enqueue(row.pk for row in created)
    return created


def deliveries_visible_to(by: Principal, organisation: Organisation | None) -> Any:
    """An organisation's deliveries for its admins and clients; every organisation's for operators."""
    deliveries = WebhookDelivery.objects.select_related("endpoint__organisation")
    if organisation is None:
        if not (isinstance(by, User) and by.is_operator):
            raise Forbidden("Name your organisation.")
        return deliveries
    policy.require(by, OrgAction.MANAGE_WEBHOOKS, organisation)
    return deliveries.filter(endpoint__organisation=organisation)


def delivery_replay(*, by: Principal, delivery: WebhookDelivery) -> WebhookDelivery:
    """Put a dead delivery back in the queue, with the same jti, for another 26 hours of attempts."""
    policy.require(by, OrgAction.MANAGE_WEBHOOKS, delivery.endpoint.organisation)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint__organisation")
            .get(pk=delivery.pk)
        )
        if delivery.state != State.DEAD:
            raise Conflict(f"Only a dead delivery is replayed; this one is {delivery.state}.")
        if not delivery.endpoint.enabled:
            raise Conflict("The endpoint is disabled: register it again, then replay.")
        now = timezone.now()
        delivery.state = State.PENDING
        delivery.replayed_at = delivery.next_attempt_at = now
        delivery.leased_until = None
        delivery.save(update_fields=["state", "replayed_at", "next_attempt_at", "leased_until"])
        audit.record(
            verb="webhook.replayed",
            actor=actor_of(by),
            subject=delivery.endpoint.organisation,
            details={"delivery": str(delivery.pk), "event_type": delivery.event_type},
        )
        sending.enqueue([delivery.pk])
    return delivery


def _received_by(organisation: Organisation, event: str) -> WebhookDelivery:
    """A delivery to one of the organisation's endpoints, by its jti; any other answers not found."""
    try:
        jti = uuid.UUID(str(event))
    except ValueError:
        jti = None
    found = WebhookDelivery.objects.filter(pk=jti, endpoint__organisation=organisation).first() if jti else None
    if found is None:
        raise InvalidInput("No such event was sent to your organisation.", errors=[{"field": "event", "detail": ""}])
    return found


def deletion_attest(*, by: Principal, grant: Any, event: str, subject_pseudonym: str) -> WebhookDelivery:
    """A data user states it deleted a subject's data after a withdrawal or an erasure; audited."""
    organisation = grant.organisation
    _require_own(by, organisation)
    told = _received_by(organisation, event)
    payload = told.payload
    if told.event_type not in DELETION_EVENTS:
        raise InvalidInput(f"A {told.event_type} event asks for no deletion.")
    pseudonyms = {payload.get("subject_pseudonym")} | {s.get("subject_pseudonym") for s in payload.get("subjects", [])}
    if subject_pseudonym not in pseudonyms:
        raise InvalidInput("This event is not about that pseudonym.")
    grants = payload.get("grants", [])
    if grants and str(grant.pk) not in grants:
        raise InvalidInput("This event does not name this grant.")
    with transaction.atomic():
        audit.record(
            verb="grant.deletion_attested",
            actor=actor_of(by),
            subject=grant,
            details={
                "event": str(told.pk),
                "event_type": told.event_type,
                # The log is public: the pseudonym's digest, which the data user can match, not the pseudonym.
                "subject_sha256": hashlib.sha256(subject_pseudonym.encode()).hexdigest(),
            },
        )
    return told


def rights_acknowledge(*, by: Principal, organisation: Organisation, event: str) -> RightsRecipient:
    """The organisation confirms it received a forwarded rights request and is acting on it."""
    _require_own(by, organisation)
    told = _received_by(organisation, event)
    with transaction.atomic():
        recipient = (
            RightsRecipient.objects.select_for_update()
            .filter(request_id=told.payload.get("request"), organisation=organisation)
            .first()
        )
        if recipient is None:
            raise InvalidInput("This event is not a rights request.")
        if recipient.state == RightsRecipient.State.ACKNOWLEDGED:
            return recipient
        recipient.state = RightsRecipient.State.ACKNOWLEDGED
        recipient.save(update_fields=["state"])
        audit.record(
            verb="rights.acknowledged",
            actor=actor_of(by),
            subject=f"rightsrequest:{recipient.request_id}",
            details={"organisation": organisation.slug},
            citizen=recipient.request.citizen_id,
        )
    return recipient
