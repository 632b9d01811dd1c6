"""Citizens, their links with holders, the consent modules holders publish, and consent records."""

from __future__ import annotations

import datetime
import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CitizenProfile(models.Model):
    """Marks a user as a citizen (a data subject) and keeps the little Tiers needs about them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="citizen_profile")
    display_name = models.CharField(max_length=150, blank=True)
    preferred_language = models.CharField(max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    # Set by a self-service sign-up until the e-mail link is opened; never set again. An account
    # that staff disabled is inactive too, and must not be reopened by that link.
    awaiting_email_verification = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.display_name or str(self.user)


class OidcIdentity(models.Model):
    """A citizen's account at an OpenID Connect provider (its issuer-scoped `sub`), which logs them in to Tiers."""

    provider = models.CharField(max_length=32, help_text="the provider's name in TIERS_OIDC_PROVIDERS")
    subject = models.CharField(max_length=255, help_text="the ID token's sub claim")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="oidc_identity_one_user_per_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.provider}"


class LinkCode(models.Model):
    """A one-time code a holder issues so that one of its customers can link their account.

    Only the code's hash is kept; the code itself is shown once to the holder.
    """

    holder = models.ForeignKey("broker.Organisation", on_delete=models.CASCADE, related_name="link_codes")
    subject_ref = models.CharField(max_length=128, help_text="the holder's own reference for its customer")
    code_hash = models.CharField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link code for {self.holder} ({'used' if self.used_at else 'unused'})"


class IdentityLink(models.Model):
    """The link, known only to Tiers, between a citizen and a holder's reference for them."""

    citizen = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity_links")
    holder = models.ForeignKey("broker.Organisation", on_delete=models.PROTECT, related_name="identity_links")
    subject_ref = models.CharField(max_length=128)
    linked_at = models.DateTimeField(default=timezone.now)
    unlinked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["holder", "subject_ref"],
                condition=models.Q(unlinked_at__isnull=True),
                name="identity_link_one_citizen_per_subject",
            ),
            models.UniqueConstraint(
                fields=["holder", "citizen"],
                condition=models.Q(unlinked_at__isnull=True),
                name="identity_link_one_subject_per_citizen",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.citizen} at {self.holder}"


class ConsentModule(models.Model):
    """What a citizen is asked to agree to, as a holder publishes it; a new version is a new row."""

    holder = models.ForeignKey("broker.Organisation", on_delete=models.PROTECT, related_name="consent_modules")
    slug = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    title_en = models.CharField(max_length=200)
    title_fr = models.CharField(max_length=200)
    notice_en = models.TextField()
    notice_fr = models.TextField()
    risks_en = models.TextField(blank=True)
    risks_fr = models.TextField(blank=True)
    data_categories = models.JSONField(help_text="W3C DPV personal data categories, e.g. dpv-pd:Location")
    purposes = models.JSONField(help_text="W3C DPV purposes the citizen can consent to, one by one")
    recipient_categories = models.JSONField(help_text="kinds of data users, e.g. public-authority, research")
    duration_days = models.PositiveIntegerField()
    jurisdiction = models.CharField(max_length=8, default="EU")
    notice_hash = models.CharField(max_length=64, help_text="SHA-256 of the exact text shown")
    published_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["holder", "slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["holder", "slug", "version"], name="consent_module_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.title_en} v{self.version}"


class ConsentRecord(models.Model):
    """One citizen's consent to one purpose of one module version (ISO/IEC TS 27560 record).

    Its state changes only through events; the record keeps the latest state for queries.
    """

    class State(models.TextChoices):
        GIVEN = "given", _("given")
        PAUSED = "paused", _("paused")
        WITHDRAWN = "withdrawn", _("withdrawn")
        EXPIRED = "expired", _("expired")
        RENEWED = "renewed", _("renewed")

    ACTIVE_STATES = (State.GIVEN, State.RENEWED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    citizen = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    module = models.ForeignKey(ConsentModule, on_delete=models.PROTECT, related_name="consents")
    holder = models.ForeignKey("broker.Organisation", on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices)
    given_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-given_at"]
        indexes = [models.Index(fields=["holder", "purpose", "state"], name="consent_lookup_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["citizen", "module", "purpose"], name="consent_one_record_per_purpose_and_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} of {self.module} ({self.state})"

    def is_active(self, at: datetime.datetime | None = None) -> bool:
        return self.state in self.ACTIVE_STATES and self.expires_at > (at or timezone.now())


class ConsentEvent(models.Model):
    """One change of a consent record, never edited: its history, each with its signed receipt."""

    record = models.ForeignKey(ConsentRecord, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=10)
    state = models.CharField(max_length=10, choices=ConsentRecord.State.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=64)
    audit_entry_id = models.BigIntegerField()
    receipt = models.TextField(help_text="compact JWS of the record as it stood after this event")

    class Meta:
        ordering = ["at", "pk"]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update)]

    def __str__(self) -> str:
        return f"{self.event} at {self.at:%Y-%m-%d %H:%M}"


# The citizens' rights requests and their recipients live beside the services that forward them.
from consent.rights import RightsRecipient, RightsRequest  # noqa: E402

__all__ = [
    "CitizenProfile",
    "ConsentEvent",
    "ConsentModule",
    "ConsentRecord",
    "IdentityLink",
    "LinkCode",
    "OidcIdentity",
    "RightsRecipient",
    "RightsRequest",
]
