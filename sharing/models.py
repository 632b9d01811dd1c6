"""Data sharing: datasets and their vault, agreements, access requests, grants and deliveries.

Agreements are versioned and never edited in place; records are encrypted at
rest under a data key per dataset; a delivery remembers which citizens it
included, so each of them can see it. See docs/sharing.md.
"""

from __future__ import annotations

import datetime
import uuid

import pgtrigger
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

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        WITHDRAWN = "withdrawn", _("withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="datasets")
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    keywords = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    api_base_url = models.URLField(blank=True, help_text=_("the holder's API, for federated datasets"))
    table_schema = models.JSONField(default=dict, help_text=_("Frictionless Table Schema of one record"))
    subject_key_field = models.CharField(max_length=100, blank=True, help_text=_("empty for non-personal data"))
    personal_fields = models.JSONField(default=list, blank=True)
    data_categories = models.JSONField(default=list, blank=True, help_text=_("W3C DPV personal data categories"))
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["holder__name", "title"]
        constraints = [
            models.UniqueConstraint(fields=["holder", "slug"], name="dataset_unique_slug_per_holder"),
            models.CheckConstraint(condition=Q(mode="hosted") | ~Q(api_base_url=""), name="dataset_federated_has_api"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_personal(self) -> bool:
        """Personal data needs each subject's consent at every read."""
        return bool(self.subject_key_field)

    @property
    def field_names(self) -> list[str]:
        return [field["name"] for field in self.table_schema.get("fields", [])]

    @property
    def payload_fields(self) -> list[str]:
        """The fields kept in a record's encrypted payload: all but the subject key."""
        return [name for name in self.field_names if name != self.subject_key_field]


class DataKey(models.Model):
    """One version of a dataset's data key, wrapped by TIERS_KEK; records name the version they use."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="data_keys")
    version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True, help_text=_("no record uses it any more"))

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [models.UniqueConstraint(fields=["dataset", "version"], name="data_key_unique_version")]

    def __str__(self) -> str:
        return f"data key v{self.version} of {self.dataset_id}"


class Upload(models.Model):
    """A file a holder sent for a hosted dataset, and what ingesting it did."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    class OnError(models.TextChoices):
        ALL_OR_NOTHING = "all_or_nothing", _("load nothing if any row is invalid")
        KEEP_VALID = "keep_valid", _("load the valid rows, report the others")

    class State(models.TextChoices):
        RECEIVED = "received", _("received, waiting to be checked")
        LOADING = "loading", _("being checked and loaded")
        LOADED = "loaded", _("loaded")
        REJECTED = "rejected", _("rejected: nothing loaded")
        FAILED = "failed", _("failed: nothing loaded")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.CharField(max_length=64, help_text=_("audit reference of who sent it"))
    format = models.CharField(max_length=5, choices=Format.choices)
    on_error = models.CharField(max_length=14, choices=OnError.choices, default=OnError.ALL_OR_NOTHING)
    replace = models.BooleanField(default=False, help_text=_("replace the dataset's records instead of adding"))
    path = models.CharField(max_length=500, blank=True, help_text=_("the file while it waits; removed after"))
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RECEIVED)
    rows_total = models.BigIntegerField(default=0)
    rows_loaded = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    failure = models.TextField(blank=True, help_text=_("why the whole file could not be read"))
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.state})"


class UploadError(models.Model):
    """Why one line of an upload was refused (the first errors of an upload; the count is on it)."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="errors")
    line = models.BigIntegerField(help_text=_("1-based line in the file"))
    field = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["line", "pk"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class Record(models.Model):
    """One row of a hosted dataset: the holder's subject reference and the rest, encrypted."""

    id = models.BigAutoField(primary_key=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="records")
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, related_name="+")
    subject_ref = models.CharField(max_length=128, blank=True)
    key_version = models.PositiveIntegerField()
    payload = models.BinaryField(help_text=_("AES-256-GCM: nonce, then the JSON object and its tag"))

    class Meta:
        indexes = [models.Index(fields=["dataset", "subject_ref"], name="record_subject_idx")]

    def __str__(self) -> str:
        return f"record {self.id} of {self.dataset_id}"


class Agreement(models.Model):
    """One version of a data-altruism agreement between a holder and Tiers; never edited once signed.

    `terms` holds what the parties agree to; `content_hash` is the SHA-256 of its
    RFC 8785 form together with the predecessor's hash, which chains the versions.
    """

    class ApprovalMode(models.TextChoices):
        AUTOMATIC = "automatic", _("automatic when the request matches the policy")
        HOLDER = "holder", _("reviewed by the holder")
        ETHICS = "ethics", _("reviewed by the operator's ethics review")

    class State(models.TextChoices):
        DRAFT = "draft", _("draft, waiting for the holder's signature")
        SIGNED = "signed", _("signed by the holder, waiting for the operator")
        ACTIVE = "active", _("in force")
        SUPERSEDED = "superseded", _("replaced by a newer version")
        TERMINATED = "terminated", _("terminated")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="agreements")
    series = models.UUIDField(default=uuid.uuid4, help_text=_("the same for every version of one agreement"))
    version = models.PositiveIntegerField(default=1)
    predecessor = models.OneToOneField("self", on_delete=models.PROTECT, null=True, related_name="successor")
    predecessor_hash = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=200)
    datasets = models.ManyToManyField(Dataset, related_name="agreements")
    terms = models.JSONField(help_text=_("purposes, recipient categories, consent modules, conditions, validity"))
    approval_mode = models.CharField(max_length=9, choices=ApprovalMode.choices)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    content_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    holder_signed_by = models.CharField(max_length=64, blank=True)
    holder_signed_at = models.DateTimeField(null=True, blank=True)
    countersigned_by = models.CharField(max_length=64, blank=True)
    countersigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["holder__name", "title", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["series", "version"], name="agreement_unique_version"),
            models.CheckConstraint(condition=Q(valid_until__gt=models.F("valid_from")), name="agreement_ends_after"),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @property
    def purposes(self) -> list[str]:
        return list(self.terms.get("purposes", []))

    @property
    def recipient_categories(self) -> list[str]:
        return list(self.terms.get("recipient_categories", []))

    @property
    def conditions(self) -> dict[str, object]:
        return dict(self.terms.get("conditions", {}))

    def in_force(self, at: datetime.datetime | None = None) -> bool:
        moment = at or timezone.now()
        return self.state == self.State.ACTIVE and self.valid_from <= moment < self.valid_until


class AccessRequest(models.Model):
    """A data user's request to use a holder's datasets for one general-interest purpose."""

    class State(models.TextChoices):
        PENDING = "pending", _("waiting for review")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="access_requests")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="access_requests")
    items = models.JSONField(help_text=_('[{"dataset": id, "fields": [...]}]'))
    purpose = models.CharField(max_length=100)
    recipient_category = models.CharField(max_length=32)
    justification = models.TextField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    retention_days = models.PositiveIntegerField()
    reviewer = models.CharField(max_length=9, choices=Agreement.ApprovalMode.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    coverage = models.PositiveIntegerField(default=0, help_text=_("consenting linked subjects at submission"))
    submitted_by = models.CharField(max_length=64)
    submitted_at = models.DateTimeField(default=timezone.now)
    decided_by = models.CharField(max_length=64, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="request_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"request {self.id} ({self.state})"


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
    access_request = models.ForeignKey(
        AccessRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="grants"
    )
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, null=True, blank=True, related_name="grants")
    purpose = models.CharField(max_length=100, help_text=_("W3C DPV purpose term, e.g. dpv:ScientificResearch"))
    recipient_category = models.CharField(max_length=32, blank=True)
    fields = models.JSONField(default=list, help_text=_("the fields delivered; the subject key never is"))
    retention_days = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    revoked_by = models.CharField(max_length=64, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=500, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
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


class ProcessingResult(models.Model):
    """What a grant's data served, as its data user reports it once the grant ends (feeds Art. 20(2))."""

    grant = models.OneToOneField(Grant, on_delete=models.PROTECT, related_name="result")
    summary = models.TextField(help_text=_("what the data served, in plain words"))
    outputs = models.JSONField(default=list, blank=True, help_text=_("links to published results, if any"))
    data_deleted = models.BooleanField(help_text=_("the data user confirms it deleted the data it received"))
    filed_by = models.CharField(max_length=64)
    filed_at = models.DateTimeField(default=timezone.now)
    audit_entry_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"results of {self.grant_id}"


class PseudonymKey(models.Model):
    """The secret behind one reading organisation's pseudonyms, wrapped by TIERS_KEK."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="pseudonym_key")
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pseudonym key of {self.organisation_id}"


class Delivery(models.Model):
    """One read of a grant: hosted (Tiers streamed it) or federated (the holder reported it)."""

    class Kind(models.TextChoices):
        HOSTED = "hosted", _("streamed by Tiers")
        FEDERATED = "federated", _("delivered by the holder")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="deliveries")
    kind = models.CharField(max_length=9, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    records = models.BigIntegerField()
    subjects = models.BigIntegerField()
    subjects_digest = models.CharField(max_length=64, help_text=_("SHA-256 of the sorted pseudonyms included"))
    receipt_jti = models.CharField(
        max_length=300, null=True, blank=True, unique=True, help_text=_("<client_id>:<jti> of a federated receipt")
    )
    audit_entry_id = models.BigIntegerField()

    class Meta:
        ordering = ["-at"]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update)]

    def __str__(self) -> str:
        return f"delivery {self.id} of {self.grant_id}"


class DeliverySubject(models.Model):
    """A subject a delivery included; for linked citizens, what their access history shows."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="included")
    subject_ref = models.CharField(max_length=128)
    pseudonym = models.CharField(max_length=64)
    citizen = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="deliveries_included"
    )
    records = models.BigIntegerField(null=True, help_text=_("how many of the subject's records, when known"))

    class Meta:
        indexes = [
            models.Index(fields=["delivery", "subject_ref"], name="delivery_subject_idx"),
            models.Index(fields=["citizen"], name="delivery_citizen_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} in {self.delivery_id}"
