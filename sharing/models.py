"""Datasets and grants: the part of data sharing that tokens are bound to.

This is the minimal shape the OAuth server needs; agreements, access requests
and delivery extend it.
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from broker.models import Organisation


class Dataset(models.Model):
    """A holder's dataset: hosted in Tiers' vault, or kept at the holder's API (federated)."""

    class Mode(models.TextChoices):
        HOSTED = "hosted", _("hosted by Tiers")
        FEDERATED = "federated", _("federated: kept at the holder")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="datasets")
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    api_base_url = models.URLField(blank=True, help_text=_("the holder's API, for federated datasets"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["holder", "slug"], name="dataset_unique_slug_per_holder"),
            models.CheckConstraint(condition=Q(mode="hosted") | ~Q(api_base_url=""), name="dataset_federated_has_api"),
        ]

    def __str__(self) -> str:
        return self.title


class GrantQuerySet(models.QuerySet["Grant"]):
    def active(self, at: datetime.datetime | None = None) -> GrantQuerySet:
        moment = at or timezone.now()
        return self.filter(state=Grant.State.ACTIVE, starts_at__lte=moment, ends_at__gt=moment)


class Grant(models.Model):
    """A data user's time-limited permission to use one dataset for one purpose."""

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        REVOKED = "revoked", _("revoked")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="grants")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="grants")
    purpose = models.CharField(max_length=100, help_text=_("W3C DPV purpose term, e.g. dpv:ScientificResearch"))
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = GrantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="grant_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"grant {self.id} on {self.dataset}"

    def is_active(self, at: datetime.datetime | None = None) -> bool:
        moment = at or timezone.now()
        return self.state == self.State.ACTIVE and self.starts_at <= moment < self.ends_at

    @property
    def audience(self) -> str:
        """Where the grant's data is served: Tiers for hosted datasets, the holder's API otherwise."""
        if self.dataset.mode == Dataset.Mode.FEDERATED:
            return self.dataset.api_base_url
        return settings.TIERS_BASE_URL
