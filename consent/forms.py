"""The citizen portal's forms, and the plain words it shows for the vocabulary modules use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Plain words for the terms modules use most; any other term is spelled out from its name.
TERMS: dict[str, Promise] = {
    "dpv:ScientificResearch": _("Scientific research"),
    "dpv:ResearchAndDevelopment": _("Research and development"),
    "dpv:PublicPolicy": _("Public policy"),
    "dpv:PublicBenefit": _("Public benefit"),
    "dpv:StatisticalPurpose": _("Statistics"),
    "dpv-pd:EnergyConsumption": _("Energy consumption"),
    "dpv-pd:Location": _("Location"),
    "dpv-pd:HealthRecord": _("Health records"),
    "public-authority": _("Public authorities"),
    "research": _("Research organisations"),
    "non-profit": _("Non-profit organisations"),
}


def term_label(term: str) -> str:
    """`dpv:ScientificResearch` → "Scientific research": the words a person reads for a vocabulary term."""
    if term in TERMS:
        return str(TERMS[term])
    name = term.rsplit(":", 1)[-1].replace("-", " ").replace("_", " ")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).split()
    text = " ".join(word if word.isupper() else word.lower() for word in words)
    return text[:1].upper() + text[1:]


def term_labels(terms: Iterable[str]) -> list[dict[str, str]]:
    """Each term with its plain words, for templates that show both."""
    return [{"term": term, "label": term_label(term)} for term in terms]


class LinkForm(forms.Form):
    code = forms.CharField(
        label=_("Link code from your data holder"),
        help_text=_("Your data holder gave you this code, for example in a letter or on their website."),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )


class ConsentForm(forms.Form):
    """One checkbox per purpose the citizen has not agreed to yet; none is ticked in advance."""

    purposes = forms.MultipleChoiceField(
        label=_("The purposes you agree to"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick at least one purpose, or leave this page: nothing is shared.")},
    )

    def __init__(self, *args: Any, purposes: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["purposes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(purpose, f"{term_label(purpose)} ({purpose})") for purpose in purposes]
