"""The parties Tiers deals with, and the outbox that carries their consequences."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person who logs in: a citizen, a member of an organisation, or an operator.

    Operators are the broker's own staff: `is_staff` users. A citizen is a user
    with a citizen profile (consent app); a member is a user with memberships.
    """

    @property
    def is_operator(self) -> bool:
        return self.is_active and self.is_staff


class OrganisationQuerySet(models.QuerySet["Organisation"]):
    def verified(self) -> OrganisationQuerySet:
        return self.filter(verification_state=Organisation.Verification.VERIFIED)


class Organisation(models.Model):
    """A legal person that holds data, uses data, or both."""

    class Kind(models.TextChoices):
        HOLDER = "holder", _("data holder")
        USER = "user", _("data user")
        BOTH = "both", _("data holder and data user")

    class Verification(models.TextChoices):
        PENDING = "pending", _("pending verification")
        VERIFIED = "verified", _("verified")
        REJECTED = "rejected", _("rejected")
        EXCLUDED = "excluded", _("excluded")

    class IdentifierScheme(models.TextChoices):
        SIREN = "siren", "SIREN"
        EUID = "euid", "EUID"
        LEI = "lei", "LEI"
        VAT = "vat", _("VAT number")

    slug = models.SlugField(unique=True, max_length=64)
    name = models.CharField(max_length=200)
    legal_identifier = models.CharField(max_length=64)
    identifier_scheme = models.CharField(max_length=8, choices=IdentifierScheme.choices)
    country = models.CharField(max_length=2, help_text=_("ISO 3166-1 alpha-2 code"))
    kind = models.CharField(max_length=8, choices=Kind.choices)
    contact_email = models.EmailField(blank=True)
    verification_state = models.CharField(
        max_length=10, choices=Verification.choices, default=Verification.PENDING
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["identifier_scheme", "legal_identifier"],
                name="organisation_unique_legal_identifier",
            ),
            models.CheckConstraint(
                condition=~Q(verification_state="verified") | Q(verified_at__isnull=False),
                name="organisation_verified_has_date",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.verification_state == self.Verification.VERIFIED

    @property
    def holds_data(self) -> bool:
        return self.kind in (self.Kind.HOLDER, self.Kind.BOTH)

    @property
    def uses_data(self) -> bool:
        return self.kind in (self.Kind.USER, self.Kind.BOTH)


class Membership(models.Model):
    """A user's role in an organisation."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("administrator")
        DATA_STEWARD = "data_steward", _("data steward")
        REVIEWER = "reviewer", _("reviewer")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organisation", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) at {self.organisation}"


class OutboxEvent(models.Model):
    """A consequence that must not be lost, written in the transaction that caused it.

    A relay hands it to a worker after the commit; a sweeper re-sends what was
    left behind. Handlers are idempotent, so handling an event twice is harmless.
    """

    topic = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # A worker that claims the event holds it until this time; after it, the
    # sweeper may hand the event to another worker (the first one died).
    leased_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(handled_at__isnull=True),
                name="outbox_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
