"""Outbox handlers of the trust core. Each is idempotent."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

from broker import outbox
from broker.models import Organisation, OutboxEvent


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
    EmailMessage(
        subject=_("Tiers: %(name)s is verified") % {"name": organisation.name},
        body=body,
        to=[organisation.contact_email],
        # A second delivery of the same event carries the same id, so it can be dropped.
        headers={"X-Tiers-Event-Id": str(event.pk)},
    ).send()
