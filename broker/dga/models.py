"""The operator's registration, its published annual reports and its incidents (DGA Art. 11, 12, 19-21)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OperatorProfile(models.Model):
    """Tiers' own registration under the DGA: one row, edited by operators in the admin."""

    class Role(models.TextChoices):
        DATA_ALTRUISM = "data_altruism_organisation", _("data altruism organisation registered under Art. 19")
        INTERMEDIATION = "data_intermediation_service", _("data intermediation service notified under Art. 11")

    class Status(models.TextChoices):
        APPLIED = "applied", _("applied, not registered yet")
        ACTIVE = "active", _("registered and active")
        SUSPENDED = "suspended", _("suspended")
        WITHDRAWN = "withdrawn", _("withdrawn from the register")

    legal_name = models.CharField(max_length=200)
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.DATA_ALTRUISM)
    registration_number = models.CharField(max_length=100, blank=True)
    competent_authority = models.CharField(max_length=200, blank=True)
    legal_form = models.CharField(max_length=100, blank=True, help_text=_("e.g. association loi 1901, foundation"))
    statutes_url = models.URLField(blank=True, help_text=_("the statutes, published"))
    income_sources = models.TextField(blank=True, help_text=_("main sources of income (Art. 19(4))"))
    contact_person = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, help_text=_("ISO 3166-1 alpha-2 code of the main establishment"))
    address = models.TextField(blank=True)
    contact_email = models.EmailField()
    website = models.URLField(blank=True)
    union_register_url = models.URLField(blank=True, help_text=_("this organisation's entry in the Union register"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPLIED)
    registered_at = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.legal_name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class AnnualReport(models.Model):
    """A published Art. 20(2) activity report: the signed document, never edited once published."""

    year = models.PositiveIntegerField(unique=True)
    document = models.JSONField()
    jws = models.TextField(help_text=_("compact JWS of the document by the broker's key"))
    sha256 = models.CharField(max_length=64)
    published_at = models.DateTimeField(default=timezone.now)
    audit_entry_id = models.BigIntegerField()

    class Meta:
        ordering = ["-year"]

    def __str__(self) -> str:
        return f"annual report {self.year}"


class Incident(models.Model):
    """An unauthorised access or other breach (Art. 12(k), 21(5)) and whom Tiers told."""

    class State(models.TextChoices):
        OPEN = "open", _("recorded")
        NOTIFIED = "notified", _("those affected were notified")
        CLOSED = "closed", _("closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    summary = models.CharField(max_length=300)
    description = models.TextField()
    occurred_at = models.DateTimeField()
    detected_at = models.DateTimeField()
    organisation = models.ForeignKey(
        "broker.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="incidents",
        help_text=_("the organisation that accessed data without authorisation, if known"),
    )  # fmt: skip
    grants = models.ManyToManyField("sharing.Grant", blank=True, related_name="incidents")
    personal_data = models.BooleanField(help_text=_("whether personal data was concerned"))
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return self.summary


class IncidentNotice(models.Model):
    """One notification of an incident: to a holder whose data was concerned, or to a citizen."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notices")
    organisation = models.ForeignKey("broker.Organisation", on_delete=models.CASCADE, null=True, related_name="+")
    citizen = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(organisation__isnull=False) | models.Q(citizen__isnull=False),
                name="incident_notice_has_recipient",
            )
        ]

    def __str__(self) -> str:
        return f"notice of {self.incident_id}"
