"""The forms of the operators' workspace."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from broker.models import Organisation
from sharing.forms import PortalForm, comma_separated
from sharing.models import Grant

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=DATETIME_FORMAT, **kwargs)


class ReasonForm(PortalForm):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class IncidentForm(PortalForm):
    summary = forms.CharField(label=gettext_lazy("Summary"), max_length=300)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("What happened, what data, what was done. Those notified read it."),
    )
    occurred_at = forms.DateTimeField(
        label=gettext_lazy("Occurred at"), input_formats=[DATETIME_FORMAT], widget=DateTimeInput()
    )
    detected_at = forms.DateTimeField(
        label=gettext_lazy("Detected at"), input_formats=[DATETIME_FORMAT], widget=DateTimeInput()
    )
    organisation = forms.ModelChoiceField(
        label=gettext_lazy("Organisation at fault"),
        queryset=Organisation.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        help_text=gettext_lazy("Leave empty when it is not known."),
    )
    grants = forms.CharField(
        label=gettext_lazy("Grants concerned"),
        required=False,
        help_text=gettext_lazy("Comma-separated grant ids: the holders of their datasets are notified."),
    )
    personal_data = forms.BooleanField(label=gettext_lazy("Personal data was concerned"), required=False)

    def clean_grants(self) -> list[Grant]:
        raw = comma_separated(self.cleaned_data["grants"])
        try:
            ids = [uuid.UUID(value) for value in raw]
        except ValueError as exc:
            raise forms.ValidationError(_("Grant ids look like 0b6c…-…; separate them with commas.")) from exc
        grants = list(Grant.objects.filter(pk__in=ids))
        unknown = sorted({str(i) for i in ids} - {str(grant.pk) for grant in grants})
        if unknown:
            raise forms.ValidationError(_("No such grant: %(ids)s.") % {"ids": ", ".join(unknown)})
        return grants
