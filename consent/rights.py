"""A citizen's rights requests (GDPR Art. 16, 17, 21) and whom Tiers forwarded each to.

Tiers knows which holders a citizen is linked with and which data users
received data about them; it forwards the request to each as a signed webhook
(`rights-erasure`, `rights-rectification`, `rights-objection`), with the
reference that organisation knows them by. The services are in consent/services.py.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:  # broker.models imports this module while it loads
    from broker.models import User


class RightsRequest(models.Model):
    """What a citizen asks of the organisations holding data about them; kept after an erasure, unnamed."""

    class Kind(models.TextChoices):
        ERASURE = "erasure", _("erasure (Art. 17)")
        RECTIFICATION = "rectification", _("rectification (Art. 16)")
        OBJECTION = "objection", _("objection (Art. 21)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SET_NULL: an erased account's erasure notices stay traceable without naming the citizen.
    citizen = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="rights_requests"
    )
    kind = models.CharField(max_length=13, choices=Kind.choices)
    details = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "consent"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} request {self.id}"

    @property
    def event_type(self) -> str:
        return f"rights-{self.kind}"


class RightsRecipient(models.Model):
    """One organisation a request was forwarded to, and how far that got."""

    class State(models.TextChoices):
        PENDING = "pending", _("being forwarded")
        FORWARDED = "forwarded", _("forwarded")
        ACKNOWLEDGED = "acknowledged", _("acknowledged by the organisation")
        NO_ENDPOINT = "no_endpoint", _("not forwarded: the organisation has no webhook")

    request = models.ForeignKey(RightsRequest, on_delete=models.CASCADE, related_name="recipients")
    organisation = models.ForeignKey("broker.Organisation", on_delete=models.PROTECT, related_name="+")
    delivery = models.ForeignKey(
        "broker.WebhookDelivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="rights_recipients"
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)

    class Meta:
        app_label = "consent"
        ordering = ["request", "organisation__name"]
        constraints = [
            models.UniqueConstraint(fields=["request", "organisation"], name="rights_recipient_once_per_organisation"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} to {self.organisation_id} ({self.state})"


# --- reads, scoped to the citizen asking ------------------------------------------------------------


def requests_of(citizen: User) -> models.QuerySet[RightsRequest]:
    """The citizen's own requests, newest first, with their recipients and deliveries."""
    return RightsRequest.objects.filter(citizen=citizen).prefetch_related(
        models.Prefetch(
            "recipients", queryset=RightsRecipient.objects.select_related("organisation", "delivery").order_by("pk")
        )
    )


def request_of(citizen: User, request_id: object) -> RightsRequest | None:
    """One of the citizen's own requests; None for anyone else's, or for anything that is not an id."""
    try:
        wanted = uuid.UUID(str(request_id))
    except ValueError:
        return None
    return requests_of(citizen).filter(pk=wanted).first()


def recipient_status(recipient: RightsRecipient) -> str:
    """What the citizen is shown: forwarded, acknowledged, no endpoint, being forwarded, or not delivered."""
    pending = recipient.state == RightsRecipient.State.PENDING
    if pending and recipient.delivery is not None and recipient.delivery.state == "dead":
        return "not_delivered"
    return str(recipient.state)
