"""The parties Tiers deals with, and the outbox that carries their consequences."""

from __future__ import annotations

import pgtrigger
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

    class RecipientCategory(models.TextChoices):
        """What kind of data user it is: consents and agreements name the kinds they allow."""

        PUBLIC_AUTHORITY = "public-authority", _("public authority")
        RESEARCH_BODY = "research-body", _("research body")
        NON_PROFIT = "non-profit", _("non-profit organisation")

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
    recipient_category = models.CharField(
        max_length=16, choices=RecipientCategory.choices, blank=True, help_text=_("for data users")
    )
    contact_email = models.EmailField(blank=True)
    verification_state = models.CharField(max_length=10, choices=Verification.choices, default=Verification.PENDING)
    verified_at = models.DateTimeField(null=True, blank=True)
    state_reason = models.CharField(max_length=1000, blank=True, help_text=_("why it was rejected or excluded"))
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


class Invitation(models.Model):
    """An organisation admin's invitation to join with a role, sent by e-mail; the token is stored hashed."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.organisation}"


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
    # Taken out of the queue after OUTBOX_MAX_ATTEMPTS claims without success (a poison event).
    quarantined_at = models.DateTimeField(null=True, blank=True)

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


class SigningKey(models.Model):
    """A key the broker signs with; the private half is kept encrypted under TIERS_KEK.

    JWS keys (ES256) sign checkpoints, receipts, tokens and reports; the note key
    (Ed25519) signs C2SP checkpoint notes. A retired key signs nothing new but
    stays published, so what it signed can still be verified.
    """

    class Purpose(models.TextChoices):
        JWS = "jws", "JWS (ES256)"
        NOTE = "note", "Signed note (Ed25519)"

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    kid = models.CharField(max_length=64, unique=True, help_text=_("RFC 7638 JWK thumbprint"))
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    algorithm = models.CharField(max_length=16)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    public_jwk = models.JSONField()
    # PKCS #8 DER, AES-256-GCM under TIERS_KEK: 12-byte nonce, then ciphertext and tag.
    encrypted_private_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"], condition=Q(state="active"), name="signing_key_one_active_per_purpose"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.kid} ({self.state})"


# --- The audit trail: a verifiable transparency log (docs/audit.md) -----------------


# Triggers that refuse UPDATE and DELETE on PostgreSQL; SQLite (the demo's database) has none.
APPEND_ONLY = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]


class AuditEntry(models.Model):
    """One leaf of the transparency log: the hash that commits to an event, kept forever.

    The event itself sits beside it in AuditBody, which erasure may remove; the
    leaf hash stays, so every root and proof stays valid. The sequencer gives
    each entry its leaf index once; nothing else about an entry ever changes.
    """

    leaf_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    leaf_index = models.BigIntegerField(null=True, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(leaf_index__isnull=True), name="audit_entry_pending_idx"),
        ]
        triggers = [
            pgtrigger.Protect(name="append_only_delete", operation=pgtrigger.Delete),
            # The one update allowed: the sequencer sets a leaf index where there was none.
            pgtrigger.Protect(
                name="append_only_update",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "OLD.leaf_index IS NOT NULL OR NEW.leaf_index IS NULL"
                    " OR OLD.id IS DISTINCT FROM NEW.id"
                    " OR OLD.leaf_hash IS DISTINCT FROM NEW.leaf_hash"
                    " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"audit entry {self.leaf_index if self.leaf_index is not None else f'#{self.pk} (pending)'}"


class AuditBody(models.Model):
    """The event an audit entry commits to, in the erasable store beside the log.

    `canonical` is the exact RFC 8785 JSON whose hash is the leaf: a random salt
    and the event. Entries about a citizen name them in `citizen_id`; erasing the
    citizen deletes these rows, and with the salt gone the leaf reveals nothing.
    """

    entry = models.OneToOneField(AuditEntry, on_delete=models.PROTECT, primary_key=True, related_name="body")
    canonical = models.BinaryField()
    verb = models.CharField(max_length=64)
    subject = models.CharField(max_length=128)
    citizen_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["verb"], name="audit_body_verb_idx"),
            models.Index(fields=["subject"], name="audit_body_subject_idx"),
            models.Index(fields=["citizen_id"], condition=Q(citizen_id__isnull=False), name="audit_body_citizen_idx"),
        ]
        # Erasure deletes a body; nothing may rewrite one.
        triggers = [pgtrigger.Protect(name="no_rewrite", operation=pgtrigger.Update)]

    def __str__(self) -> str:
        return f"{self.verb} {self.subject}"


class MerkleNode(models.Model):
    """The hash of one complete subtree of the log: level 0 holds the leaves."""

    pk = models.CompositePrimaryKey("level", "index")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        triggers = APPEND_ONLY

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class LogHead(models.Model):
    """The one row the sequencer locks: how many leaves the tree has."""

    tree_size = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"log head at {self.tree_size}"


class Checkpoint(models.Model):
    """A signed statement of the tree's size and root at a moment."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    timestamp = models.DateTimeField()
    jws = models.TextField(help_text=_("compact JWS over {tree_size, root_hash, timestamp}"))
    note = models.TextField(help_text=_("C2SP tlog-checkpoint signed note"))

    class Meta:
        ordering = ["-tree_size"]
        triggers = APPEND_ONLY

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size}"


# The OAuth server's models live in their own module; importing them here registers them.
from broker.dga.models import AnnualReport, Incident, IncidentNotice, OperatorProfile  # noqa: E402
from broker.oauth.models import IssuedToken, OAuthClient, UsedAssertion  # noqa: E402
from broker.security.models import IdempotentResponse, LoginAttempt, Passkey, RecoveryCode, TOTPDevice  # noqa: E402
from broker.webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402

__all__ = [
    "APPEND_ONLY",
    "AnnualReport",
    "AuditBody",
    "AuditEntry",
    "Checkpoint",
    "IdempotentResponse",
    "Incident",
    "IncidentNotice",
    "Invitation",
    "IssuedToken",
    "LogHead",
    "LoginAttempt",
    "Membership",
    "MerkleNode",
    "OAuthClient",
    "OperatorProfile",
    "Organisation",
    "OutboxEvent",
    "Passkey",
    "RecoveryCode",
    "SigningKey",
    "TOTPDevice",
    "UsedAssertion",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
