"""The forms of the sharing pages: datasets, uploads, agreements, access requests and decisions."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from broker.models import Organisation
from sharing.models import Agreement, Dataset, Upload
from sharing.vocabulary import GENERAL_INTEREST_PURPOSES

# How the portal names an uploaded file's content by its extension (ingest accepts these types).
UPLOAD_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson"}
PURPOSE_CHOICES = [(term, f"{label} ({term})") for term, label in GENERAL_INTEREST_PURPOSES.items()]


def comma_separated(raw: str) -> list[str]:
    """`a, b,,c` → ["a", "b", "c"], in order, each once."""
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def start_of_day(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of the day, in the portal's time zone."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def end_of_day(day: datetime.date) -> datetime.datetime:
    """Midnight at the end of the day: a period's last day is included in it."""
    return start_of_day(day + datetime.timedelta(days=1))


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class PortalForm(forms.Form):
    """A form whose errors a page also lists at its top, each linked to its field."""

    def error_summary(self) -> list[tuple[forms.BoundField, str]]:
        return [(field, str(error)) for field in self if not field.is_hidden for error in field.errors]


class PeriodMixin:
    """A first and a last day, the last not before the first."""

    def check_period(self, cleaned: dict[str, Any], first: str, last: str) -> None:
        if cleaned.get(first) and cleaned.get(last) and cleaned[last] < cleaned[first]:
            assert isinstance(self, forms.Form)
            self.add_error(last, _("The last day cannot be before the first."))


# --- datasets ------------------------------------------------------------------------------------


class DatasetForm(PortalForm):
    slug = forms.SlugField(
        label=gettext_lazy("Short name"),
        max_length=64,
        help_text=gettext_lazy("Letters, digits and hyphens; it appears in the dataset's address."),
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    mode = forms.ChoiceField(label=gettext_lazy("Where the data stays"), choices=Dataset.Mode.choices)
    api_base_url = forms.URLField(
        label=gettext_lazy("Your API's base address"),
        help_text=gettext_lazy("For federated datasets only: Tiers never holds their data."),
        required=False,
        assume_scheme="https",
    )
    table_schema = forms.CharField(
        label=gettext_lazy("Table Schema (JSON)"),
        help_text=gettext_lazy(
            'A Frictionless Table Schema of one record, e.g. {"fields": [{"name": "meter", "type": "string"}]}.'
        ),
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
    )
    subject_key_field = forms.CharField(
        label=gettext_lazy("Subject key field"),
        help_text=gettext_lazy("The field naming the person a record is about; empty for non-personal data."),
        max_length=100,
        required=False,
    )
    personal_fields = forms.CharField(
        label=gettext_lazy("Personal fields"),
        help_text=gettext_lazy("Comma-separated field names."),
        required=False,
    )
    data_categories = forms.CharField(
        label=gettext_lazy("Personal data categories"),
        help_text=gettext_lazy("Comma-separated W3C DPV terms, e.g. dpv-pd:EnergyConsumption."),
        required=False,
    )
    keywords = forms.CharField(
        label=gettext_lazy("Keywords"), help_text=gettext_lazy("Comma-separated."), required=False
    )

    def clean_table_schema(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["table_schema"])
        except ValueError as exc:
            raise forms.ValidationError(_("This is not JSON: %(problem)s") % {"problem": exc}) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_('A Table Schema is a JSON object: {"fields": [...]}.'))
        return value

    def clean_personal_fields(self) -> list[str]:
        return comma_separated(self.cleaned_data["personal_fields"])

    def clean_data_categories(self) -> list[str]:
        return comma_separated(self.cleaned_data["data_categories"])

    def clean_keywords(self) -> list[str]:
        return comma_separated(self.cleaned_data["keywords"])


class UploadForm(PortalForm):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("CSV with a header row (.csv), or JSON Lines (.jsonl, .ndjson), in UTF-8."),
        widget=forms.FileInput(attrs={"accept": ",".join(UPLOAD_TYPES)}),
    )
    on_error = forms.ChoiceField(
        label=gettext_lazy("When a row is invalid"),
        choices=Upload.OnError.choices,
        initial=Upload.OnError.ALL_OR_NOTHING,
        widget=forms.RadioSelect,
    )
    replace = forms.BooleanField(
        label=gettext_lazy("Replace the dataset's records instead of adding to them"), required=False
    )

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        if PurePath(file.name or "").suffix.lower() not in UPLOAD_TYPES:
            raise forms.ValidationError(_("Send a .csv, .jsonl or .ndjson file."))
        return file

    @property
    def content_type(self) -> str:
        return UPLOAD_TYPES[PurePath(self.cleaned_data["file"].name).suffix.lower()]


class ReasonForm(PortalForm):
    """A state change that needs a reason: withdrawing, terminating, revoking."""

    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


# --- agreements ----------------------------------------------------------------------------------


class AgreementForm(PeriodMixin, PortalForm):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    datasets = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Datasets"), queryset=Dataset.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    purposes = forms.MultipleChoiceField(
        label=gettext_lazy("General-interest purposes allowed"),
        choices=PURPOSE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )
    recipient_categories = forms.MultipleChoiceField(
        label=gettext_lazy("Recipients allowed"),
        choices=Organisation.RecipientCategory.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    consent_modules = forms.MultipleChoiceField(
        label=gettext_lazy("Consent modules covering personal data"),
        help_text=gettext_lazy("Needed when a dataset holds personal data."),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    approval_mode = forms.ChoiceField(
        label=gettext_lazy("How requests are approved"),
        choices=Agreement.ApprovalMode.choices,
        initial=Agreement.ApprovalMode.HOLDER,
        widget=forms.RadioSelect,
    )
    valid_from = forms.DateField(label=gettext_lazy("First day in force"), widget=DateInput())
    valid_until = forms.DateField(label=gettext_lazy("Last day in force"), widget=DateInput())
    retention_days_max = forms.IntegerField(
        label=gettext_lazy("Longest retention allowed, in days"), min_value=1, max_value=3650, initial=365
    )

    def __init__(self, *args: Any, datasets: Any, module_slugs: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        dataset_field = self.fields["datasets"]
        assert isinstance(dataset_field, forms.ModelMultipleChoiceField)
        dataset_field.queryset = datasets
        module_field = self.fields["consent_modules"]
        assert isinstance(module_field, forms.MultipleChoiceField)
        module_field.choices = [(slug, slug) for slug in module_slugs]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.check_period(cleaned, "valid_from", "valid_until")
        return cleaned


class SignForm(PortalForm):
    """Signing names the content hash the signer read."""

    content_hash = forms.CharField(max_length=64, widget=forms.HiddenInput)


# --- access requests -----------------------------------------------------------------------------


class AccessRequestForm(PeriodMixin, PortalForm):
    target = forms.ChoiceField(
        label=gettext_lazy("Agreement and dataset"),
        help_text=gettext_lazy("Only agreements in force are offered, each with its datasets."),
    )
    requested_fields = forms.CharField(
        label=gettext_lazy("Fields"),
        help_text=gettext_lazy("Comma-separated, among the dataset's fields listed below."),
    )
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=PURPOSE_CHOICES)
    justification = forms.CharField(
        label=gettext_lazy("General interest served"),
        help_text=gettext_lazy("Who benefits, and how; 40 characters or more."),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    starts_on = forms.DateField(label=gettext_lazy("First day of access"), widget=DateInput())
    ends_on = forms.DateField(label=gettext_lazy("Last day of access"), widget=DateInput())
    retention_days = forms.IntegerField(
        label=gettext_lazy("Retention, in days"),
        help_text=gettext_lazy("How long you keep the data after reading it."),
        min_value=0,
        max_value=36500,
    )

    def __init__(self, *args: Any, targets: Iterable[tuple[Agreement, Sequence[Dataset]]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["target"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (f"{agreement} ({agreement.holder})", [(f"{agreement.pk}/{d.pk}", d.title) for d in datasets])
            for agreement, datasets in targets
        ]

    def clean_requested_fields(self) -> list[str]:
        return comma_separated(self.cleaned_data["requested_fields"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.check_period(cleaned, "starts_on", "ends_on")
        return cleaned

    @property
    def target_ids(self) -> tuple[str, str]:
        agreement_id, dataset_id = self.cleaned_data["target"].split("/")
        return agreement_id, dataset_id


class ReviewForm(PortalForm):
    decision = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
    reason = forms.CharField(label=gettext_lazy("Reason for your decision"), max_length=1000)
