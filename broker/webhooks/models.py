"""Where organisations want to be told of events, and each telling: one delivery per event and endpoint."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookEndpoint(models.Model):
    """An HTTPS address where an organisation receives Tiers' signed events (SETs)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("broker.Organisation", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=64, help_text=_("audit reference of who registered it"))
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organisation", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "url"], condition=Q(enabled=True), name="webhook_endpoint_unique_enabled_url"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.url} of {self.organisation_id}"


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def due(self) -> WebhookDeliveryQuerySet:
        """Pending, its next attempt reached, and not held by a worker's live lease."""
        now = timezone.now()
        return self.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now).filter(
            Q(leased_until__isnull=True) | Q(leased_until__lt=now)
        )


class WebhookDelivery(models.Model):
    """One event told to one endpoint; its id is the SET's jti, the same on every attempt.

    Written in the transaction of the change it tells (or by an idempotent outbox
    fan-out: one row per endpoint, source event and type). Delivered only when the
    endpoint answered 2xx; dead once 26 hours have passed without that.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        DEAD = "dead", _("dead: not delivered")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64, help_text=_("e.g. consent-withdrawn"))
    payload = models.JSONField(help_text=_("the event's member of the SET's events claim"))
    occurred_at = models.DateTimeField(default=timezone.now, help_text=_("the SET's toe: when the event happened"))
    source_event = models.BigIntegerField(null=True, blank=True, help_text=_("the outbox event it fans out"))
    state = models.CharField(max_length=9, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker that claimed the delivery holds it until then; past it, the retry job hands it on.
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True, help_text=_("when it was last re-queued from dead"))
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("the last HTTP status"))
    last_error = models.TextField(blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "source_event", "event_type"],
                condition=Q(source_event__isnull=False),
                name="webhook_delivery_once_per_event",
            ),
            models.CheckConstraint(
                condition=~Q(state="delivered") | Q(delivered_at__isnull=False), name="webhook_delivered_has_date"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="webhook_delivery_due_idx"),
            models.Index(fields=["state", "created_at"], name="webhook_delivery_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id} ({self.state})"


__all__ = ["WebhookDelivery", "WebhookEndpoint"]
