"""Outbox handlers of the trust core. Each is idempotent."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.translation import gettext as _

from broker import outbox
from broker.models import IncidentNotice, Invitation, Organisation, OutboxEvent

logger = logging.getLogger(__name__)


def _send(event: OutboxEvent, *, subject: str, body: str, to: str) -> None:
    EmailMessage(
        subject=subject,
        body=body,
        to=[to],
        # A second delivery of the same event carries the same id, so it can be dropped.
        headers={"X-Tiers-Event-Id": str(event.pk)},
    ).send()


@outbox.handler("organisation.verified")
def notify_organisation_verified(event: OutboxEvent) -> None:
    """Tell an organisation's contact that an operator verified it."""
    organisation = Organisation.objects.get(pk=event.payload["organisation_id"])
    if not organisation.contact_email:
        return
    body = _(
        "An operator of Tiers verified %(name)s. Its administrators can now register "
        "clients, datasets and agreements at %(url)s."
    ) % {"name": organisation.name, "url": f"{settings.TIERS_BASE_URL}/org/{organisation.slug}/"}
    subject = _("Tiers: %(name)s is verified") % {"name": organisation.name}
    _send(event, subject=subject, body=body, to=organisation.contact_email)


@outbox.handler("organisation.rejected")
def notify_organisation_rejected(event: OutboxEvent) -> None:
    """Tell an organisation's contact that its application was turned down, and why."""
    organisation = Organisation.objects.get(pk=event.payload["organisation_id"])
    if not organisation.contact_email:
        return
    body = _(
        "An operator of Tiers could not verify %(name)s, for this reason:\n\n%(reason)s\n\n"
        "Reply to this message if you can correct it."
    ) % {"name": organisation.name, "reason": organisation.state_reason}
    subject = _("Tiers: the application of %(name)s is rejected") % {"name": organisation.name}
    _send(event, subject=subject, body=body, to=organisation.contact_email)


@outbox.handler("invitation.sent")
def send_invitation(event: OutboxEvent) -> None:
    """Send the invitation's link, then drop its token from the event: Tiers keeps only its hash."""
    token = event.payload.get("token")
    invitation = Invitation.objects.select_related("organisation").filter(pk=event.payload["invitation_id"]).first()
    if not token or invitation is None or invitation.accepted_at is not None:
        return  # sent already (the token was dropped), or nothing left to send
    body = _(
        "You are invited to join %(name)s on Tiers as %(role)s.\n\n"
        "Log in or create an account, then open this link to accept (it works once, until %(expires)s):\n%(url)s"
    ) % {
        "name": invitation.organisation.name,
        "role": invitation.get_role_display(),
        "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        "url": f"{settings.TIERS_BASE_URL}/join/invitations/{token}/",
    }
    subject = _("Tiers: join %(name)s") % {"name": invitation.organisation.name}
    _send(event, subject=subject, body=body, to=invitation.email)
    payload = {key: value for key, value in event.payload.items() if key != "token"}
    OutboxEvent.objects.filter(pk=event.pk).update(payload=payload)


@outbox.handler("incident.notice")
def send_incident_notice(event: OutboxEvent) -> None:
    """Tell a holder or a citizen about an incident that concerned their data; sent once."""
    notice = (
        IncidentNotice.objects.select_related("incident", "organisation", "citizen")
        .filter(pk=event.payload["notice_id"])
        .first()
    )
    if notice is None or notice.sent_at is not None:
        return
    incident = notice.incident
    if notice.organisation is not None:
        to = notice.organisation.contact_email
        body = _(
            "Tiers records an incident that concerned data of %(name)s shared through Tiers:\n\n%(summary)s\n\n"
            "%(description)s\n\nOccurred: %(occurred)s. Detected: %(detected)s. Reference: %(id)s."
        ) % {
            "name": notice.organisation.name,
            "summary": incident.summary,
            "description": incident.description,
            "occurred": incident.occurred_at.strftime("%Y-%m-%d %H:%M UTC"),
            "detected": incident.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
            "id": incident.pk,
        }
    else:
        assert notice.citizen is not None  # a notice names an organisation or a citizen
        to = notice.citizen.email
        body = _(
            "Data about you, shared through Tiers with your consent, was concerned by an incident:\n\n"
            "%(summary)s\n\n%(description)s\n\nOccurred: %(occurred)s. Detected: %(detected)s. "
            "Your uses and consents are at %(url)s. Reference: %(id)s."
        ) % {
            "summary": incident.summary,
            "description": incident.description,
            "occurred": incident.occurred_at.strftime("%Y-%m-%d %H:%M UTC"),
            "detected": incident.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
            "url": f"{settings.TIERS_BASE_URL}/me/",
            "id": incident.pk,
        }
    if not to:
        # Left unsent: the workspace shows the notices no address could reach.
        logger.warning("incident notice %s has no address to send to", notice.pk)
        return
    _send(event, subject=_("Tiers: an incident concerned your data"), body=body, to=to)
    IncidentNotice.objects.filter(pk=notice.pk, sent_at__isnull=True).update(sent_at=timezone.now())


# Webhook fan-out of consent changes registers its handlers on import.
from broker.webhooks import handlers as webhook_handlers  # noqa: E402, F401
